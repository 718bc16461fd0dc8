// File: broker/store/hf_cache.cc
#include "broker/store/hf_cache.hpp"

#include <cctype>
#include <cstdlib>
#include <vector>

namespace modelpool::broker {
namespace {

constexpr std::size_t kMaxRefBytes = 256;  // a ref file holds one commit hash

bool id_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}

bool is_commit(std::string_view s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Repo ids: ORG/NAME or NAME, each part of id_char, not "." or "..", and no
// "--" (the cache's folder name joins the parts with it).
bool valid_repo(std::string_view repo) {
  if (repo.empty() || repo.size() > 96 || repo.find("--") != std::string_view::npos) return false;
  const std::size_t slash = repo.find('/');
  if (slash != std::string_view::npos && repo.find('/', slash + 1) != std::string_view::npos) {
    return false;
  }
  for (std::string_view part :
       {repo.substr(0, slash),
        slash == std::string_view::npos ? std::string_view("x") : repo.substr(slash + 1)}) {
    if (part.empty() || part == "." || part == ".." || part.front() == '.') return false;
    for (char c : part) {
      if (!id_char(c)) return false;
    }
  }
  return true;
}

// Branches and tags: id characters and '/', no empty, "." or ".." component.
bool valid_revision(std::string_view rev) {
  if (rev.empty() || rev.size() > 200) return false;
  std::size_t start = 0;
  while (start <= rev.size()) {
    std::size_t end = rev.find('/', start);
    if (end == std::string_view::npos) end = rev.size();
    const std::string_view part = rev.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part) {
      if (!id_char(c)) return false;
    }
    start = end + 1;
  }
  return true;
}

std::string folder_of(const std::string& repo) {
  std::string out = "models--" + repo;
  if (const auto slash = out.find('/'); slash != std::string::npos) out.replace(slash, 1, "--");
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) ++i;
  return s.substr(i);
}

}  // namespace

Result<HfName> parse_hf_name(std::string_view name) {
  auto bad = [&](const char* why) {
    return error(ErrorCode::kInvalidName, "\"" + std::string(name) + "\" " + why);
  };
  if (!is_hf_name(name)) return bad("is not an hf: name");
  std::string_view rest = name.substr(kHfPrefix.size());
  HfName out;
  out.revision = "main";
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    out.revision = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!valid_revision(out.revision)) return bad("has a malformed revision after '@'");
  }
  if (!valid_repo(rest)) return bad("does not name a repository as hf:ORG/NAME[@REVISION]");
  out.repo = std::string(rest);
  return out;
}

std::string default_hf_cache() {
  if (const char* v = std::getenv("HF_HUB_CACHE"); v != nullptr && *v != '\0') return v;
  if (const char* v = std::getenv("HF_HOME"); v != nullptr && *v != '\0') {
    return std::string(v) + "/hub";
  }
  if (const char* v = std::getenv("HOME"); v != nullptr && *v != '\0') {
    return std::string(v) + "/.cache/huggingface/hub";
  }
  return "";
}

std::string hf_file_name(std::string_view repo, std::string_view commit, std::string_view file) {
  return std::string(kHfPrefix) + std::string(repo) + "@" + std::string(commit) + "/" +
         std::string(file);
}

std::optional<std::string> hf_file_path(std::string_view name) {
  if (!is_hf_name(name)) return std::nullopt;
  const std::size_t at = name.find('@');
  if (at == std::string_view::npos || name.size() < at + 1 + 40 + 2) return std::nullopt;
  const std::string_view commit = name.substr(at + 1, 40);
  if (!is_commit(commit) || name[at + 41] != '/') return std::nullopt;
  auto parsed = parse_hf_name(name.substr(0, at + 41));
  if (!parsed.ok()) return std::nullopt;
  const std::string_view file = name.substr(at + 42);
  if (file.empty()) return std::nullopt;
  return folder_of(parsed->repo) + "/snapshots/" + std::string(commit) + "/" + std::string(file);
}

Result<HfCache> HfCache::open(const std::string& root) {
  auto files = NameResolver::open(root);
  if (!files.ok()) {
    return error(ErrorCode::kNotFound,
                 "Hugging Face cache " + root + " cannot be opened: " + files.status().message());
  }
  return HfCache(std::move(files).value());
}

std::string HfCache::what_is_there(const std::string& repo_dir) const {
  std::string refs, snapshots;
  if (auto names = files_.list(repo_dir + "/refs"); names.ok()) {
    for (const auto& n : *names) refs += (refs.empty() ? "" : ", ") + n;
  }
  if (auto names = files_.list(repo_dir + "/snapshots"); names.ok()) {
    for (const auto& n : *names) snapshots += (snapshots.empty() ? "" : ", ") + n.substr(0, 12);
  }
  return "refs " + (refs.empty() ? std::string("(none)") : refs) + "; snapshots " +
         (snapshots.empty() ? std::string("(none)") : snapshots);
}

Result<HfSnapshot> HfCache::snapshot(const HfName& name) const {
  const std::string repo_dir = folder_of(name.repo);
  const std::string label = "hf:" + name.repo + "@" + name.revision;
  if (auto top = files_.list(repo_dir); !top.ok()) {
    if (top.status().code() != ErrorCode::kNotFound) return top.status();
    return error(ErrorCode::kNotFound,
                 "no repository " + name.repo + " in the Hugging Face cache " + root());
  }
  HfSnapshot out{name.repo, name.revision, "", ""};
  if (is_commit(name.revision)) {
    out.commit = name.revision;
  } else {
    auto ref = files_.read_text(repo_dir + "/refs/" + name.revision, kMaxRefBytes);
    if (!ref.ok()) {
      if (ref.status().code() != ErrorCode::kNotFound) return ref.status();
      return error(ErrorCode::kNotFound, label + " is not in the Hugging Face cache " + root() +
                                             ": it has " + what_is_there(repo_dir));
    }
    out.commit = trim(std::move(ref).value());
    if (!is_commit(out.commit)) {
      return error(ErrorCode::kLoadFailed,
                   "refs/" + name.revision + " of " + name.repo + " does not hold a commit hash");
    }
  }
  out.dir = repo_dir + "/snapshots/" + out.commit;
  if (auto snap = files_.list(out.dir); !snap.ok()) {
    if (snap.status().code() != ErrorCode::kNotFound) return snap.status();
    return error(ErrorCode::kNotFound, label + " (commit " + out.commit.substr(0, 12) +
                                           ") is not in the Hugging Face cache " + root() +
                                           ": it has " + what_is_there(repo_dir));
  }
  return out;
}

}  // namespace modelpool::broker
