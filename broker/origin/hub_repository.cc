// File: broker/origin/hub_repository.cc
#include "broker/origin/hub_repository.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <vector>

#include "broker/store/name_resolver.hpp"

namespace modelpool::broker {
namespace {

bool is_commit(const std::string& s) {
  return s.size() == 40 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) != 0; });
}

// The files of one commit on the hub, as scan_repository asks for them.
// Paths are REPO/FILE (REPO the directory scan_repository was given).
class HubSource final : public RepositorySource {
 public:
  HubSource(const Origin& hub, std::string repo, std::string commit, std::vector<std::string> files,
            const TransferOptions& opt, TransferCounters* counters)
      : hub_(hub),
        repo_(std::move(repo)),
        commit_(std::move(commit)),
        files_(std::move(files)),
        opt_(opt),
        counters_(counters) {}

  Result<std::vector<std::string>> list(const std::string&) const override { return files_; }
  Result<std::string> read_text(const std::string& path, std::size_t limit) const override {
    auto req = request(path);
    if (!req.ok()) return req.status();
    return fetch_text(*req, opt_, limit, counters_);
  }
  Result<std::uint64_t> size(const std::string& path) const override {
    auto req = request(path);
    if (!req.ok()) return req.status();
    auto info = probe(*req, opt_, counters_);
    if (!info.ok()) return info.status();
    return info->size;
  }

 private:
  Result<OriginRequest> request(const std::string& path) const {
    const std::string file = path.substr(repo_.size() + 1);
    auto req = hub_.request(hf_file_name(repo_, commit_, file));
    if (!req) {
      return error(ErrorCode::kForbidden, "\"" + file + "\" is not a file of hf:" + repo_);
    }
    return std::move(*req);
  }

  const Origin& hub_;
  std::string repo_, commit_;
  std::vector<std::string> files_;
  const TransferOptions& opt_;
  TransferCounters* counters_;
};

}  // namespace

Result<HubSnapshot> hub_snapshot(const Origin& hub, const HfName& name, const TransferOptions& opt,
                                 const RepositoryLimits& limits, TransferCounters* counters) {
  OriginRequest api;
  api.url = hub.base + "/api/models/" + encode_path(name.repo) + "/revision/" +
            encode_path(name.revision);
  api.display = redact_url(api.url);
  api.key = api.display;
  if (!hub.token.empty()) api.headers.push_back("Authorization: Bearer " + hub.token);
  auto text = fetch_text(api, opt, limits.max_index, counters);
  if (!text.ok()) {
    if (text.status().code() == ErrorCode::kNotFound) {
      return error(ErrorCode::kNotFound, "hf:" + name.repo + "@" + name.revision +
                                             ": no such repository or revision on the hub (" +
                                             text.status().message() + ")");
    }
    return text.status();
  }
  const auto info = nlohmann::json::parse(*text, nullptr, false);
  if (info.is_discarded() || !info.is_object() || !info.contains("sha") ||
      !info["sha"].is_string() || !is_commit(info["sha"].get<std::string>())) {
    return error(ErrorCode::kLoadFailed, api.display + ": the reply names no commit (\"sha\")");
  }
  HubSnapshot snap;
  snap.commit = info["sha"].get<std::string>();
  std::vector<std::string> files;
  if (info.contains("siblings") && info["siblings"].is_array()) {
    for (const auto& s : info["siblings"]) {
      if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
      const std::string f = s["rfilename"].get<std::string>();
      // The repository's own files, as for a local one (not subdirectories).
      if (f.find('/') == std::string::npos && validate_model_name(f).ok()) files.push_back(f);
    }
  }
  std::sort(files.begin(), files.end());
  HubSource source(hub, name.repo, snap.commit, std::move(files), opt, counters);
  auto scanned = scan_repository(source, name.repo, limits);
  if (!scanned.ok()) {
    return error(scanned.status().code(), "hf:" + name.repo + "@" + name.revision + " (commit " +
                                              snap.commit +
                                              ", on the hub): " + scanned.status().message());
  }
  snap.files = std::move(scanned).value();
  return snap;
}

}  // namespace modelpool::broker
