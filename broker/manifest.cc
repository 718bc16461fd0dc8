// File: broker/manifest.cc
#include "broker/manifest.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "broker/origin/origin_url.hpp"
#include "broker/store/name_resolver.hpp"

namespace modelpool::broker {

using nlohmann::json;

namespace {

std::size_t line_of(const std::string& text, std::size_t byte) {
  byte = std::min(byte, text.size());
  return 1 + static_cast<std::size_t>(
                 std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(byte), '\n'));
}

// The line on which `"name"` first appears as a key (followed by a colon,
// not as a value such as a path), for error messages.
std::size_t line_of_key(const std::string& text, const std::string& name) {
  const std::string quoted = "\"" + name + "\"";
  for (std::size_t at = text.find(quoted); at != std::string::npos;
       at = text.find(quoted, at + 1)) {
    const std::size_t next = text.find_first_not_of(" \t\r\n", at + quoted.size());
    if (next != std::string::npos && text[next] == ':') return line_of(text, at);
  }
  return 1;
}

Result<ManifestEntry> parse_entry(const json& v) {
  ManifestEntry e;
  if (v.is_string()) {
    e.path = v.get<std::string>();
    return e;
  }
  if (!v.is_object())
    return error(ErrorCode::kBadRequest, "an entry must be a path string or an object");
  for (const auto& [key, value] : v.items()) {
    if (key == "path" && value.is_string()) {
      e.path = value.get<std::string>();
    } else if (key == "revision" && value.is_string()) {
      e.revision = value.get<std::string>();
    } else if (key == "sha256" && value.is_string()) {
      e.sha256 = value.get<std::string>();
    } else if (key == "origin" && value.is_string()) {
      e.origin = value.get<std::string>();
      if (auto o = parse_origin(e.origin, nullptr); !o.ok()) {
        return error(ErrorCode::kBadRequest, o.status().message());
      }
    } else if ((key == "pin" || key == "preload") && value.is_boolean()) {
      (key == "pin" ? e.pin : e.preload) = value.get<bool>();
    } else if (key == "path" || key == "revision" || key == "sha256" || key == "pin" ||
               key == "preload" || key == "origin") {
      return error(ErrorCode::kBadRequest, "field \"" + key + "\" has the wrong type");
    } else {
      return error(ErrorCode::kBadRequest, "unknown field \"" + key + "\"");
    }
  }
  if (e.path.empty()) return error(ErrorCode::kBadRequest, "missing \"path\"");
  std::transform(e.sha256.begin(), e.sha256.end(), e.sha256.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!e.sha256.empty() && (e.sha256.size() != 64 ||
                            e.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)) {
    return error(ErrorCode::kBadRequest, "\"sha256\" must be 64 hex digits");
  }
  if (Status s = validate_model_name(e.path); !s.ok())
    return error(ErrorCode::kBadRequest, s.message());
  return e;
}

}  // namespace

Result<Manifest> Manifest::load(const std::string& file) {
  std::ifstream in(file);
  if (!in) return error(ErrorCode::kNotFound, "manifest " + file + " cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), file);
}

Result<Manifest> Manifest::parse(const std::string& text, const std::string& file) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return error(ErrorCode::kBadRequest,
                 "manifest " + file + ": line " +
                     std::to_string(line_of(text, e.byte > 0 ? e.byte - 1 : 0)) +
                     ": not valid JSON (" + e.what() + ")");
  }
  if (!doc.is_object())
    return error(ErrorCode::kBadRequest, "manifest " + file + ": line 1: must be a JSON object");
  const json& models = doc.contains("models") && doc["models"].is_object() ? doc["models"] : doc;
  Manifest m;
  for (const auto& [name, value] : models.items()) {
    auto where = "manifest " + file + ": line " + std::to_string(line_of_key(text, name)) +
                 ": model \"" + name + "\": ";
    if (Status s = validate_model_name(name); !s.ok())
      return error(ErrorCode::kBadRequest, where + s.message());
    auto e = parse_entry(value);
    if (!e.ok()) return error(ErrorCode::kBadRequest, where + e.status().message());
    m.entries_.emplace(name, std::move(e).value());
  }
  return m;
}

const ManifestEntry* Manifest::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::string Manifest::diff(const Manifest& before) const {
  std::vector<std::string> added, removed, changed;
  for (const auto& [name, e] : entries_) {
    const ManifestEntry* old = before.find(name);
    if (old == nullptr) {
      added.push_back(name);
    } else if (!(*old == e)) {
      changed.push_back(name);
    }
  }
  for (const auto& [name, e] : before.entries_) {
    if (find(name) == nullptr) removed.push_back(name);
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::string out;
  if (!added.empty()) out += "added " + join(added) + "; ";
  if (!changed.empty()) out += "changed " + join(changed) + "; ";
  if (!removed.empty()) out += "removed " + join(removed) + "; ";
  return out.empty() ? "no changes" : out.substr(0, out.size() - 2);
}

}  // namespace modelpool::broker
