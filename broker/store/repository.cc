// File: broker/store/repository.cc
#include "broker/store/repository.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_set>

namespace modelpool::broker {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool pickled(std::string_view n) {
  for (std::string_view ext : {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}) {
    if (ends_with(n, ext)) return true;
  }
  return false;
}

bool small_kind(std::string_view n) {
  for (std::string_view ext : {".json", ".txt", ".model", ".tiktoken", ".jinja"}) {
    if (ends_with(n, ext)) return true;
  }
  return starts_with(n, "tokenizer") || starts_with(n, "vocab") || starts_with(n, "merges");
}

// The shards the index names, in the order they first appear in weight_map.
Result<std::vector<std::string>> indexed_shards(
    const RepositorySource& names, const std::string& dir, const RepositoryLimits& limits,
    std::vector<std::pair<std::string, std::string>>* weight_map) {
  const std::string where = dir + "/" + std::string(kSafetensorsIndex);
  auto text = names.read_text(where, limits.max_index);
  if (!text.ok()) return text.status();
  const auto index = nlohmann::ordered_json::parse(*text, nullptr, false);
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object()) {
    return error(ErrorCode::kLoadFailed, where + " has no \"weight_map\" object");
  }
  std::vector<std::string> shards;
  std::unordered_set<std::string> seen;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string()) {
      return error(ErrorCode::kLoadFailed,
                   where + ": the shard of tensor \"" + tensor + "\" is not a string");
    }
    const std::string& shard = file.get_ref<const std::string&>();
    weight_map->emplace_back(tensor, shard);
    if (seen.insert(shard).second) shards.push_back(shard);
  }
  if (shards.empty()) return error(ErrorCode::kLoadFailed, where + " names no shard");
  return shards;
}

// The files below --models or of the Hugging Face cache.
class ResolverSource final : public RepositorySource {
 public:
  explicit ResolverSource(const NameResolver& names) : names_(names) {}
  Result<std::vector<std::string>> list(const std::string& dir) const override {
    return names_.list(dir);
  }
  Result<std::string> read_text(const std::string& path, std::size_t limit) const override {
    return names_.read_text(path, limit);
  }
  Result<std::uint64_t> size(const std::string& path) const override {
    auto file = names_.resolve(path);
    if (!file.ok()) return file.status();
    return file->identity().size;
  }

 private:
  const NameResolver& names_;
};

}  // namespace

Result<RepositoryFiles> scan_repository(const NameResolver& names, const std::string& dir,
                                        const RepositoryLimits& limits) {
  return scan_repository(ResolverSource(names), dir, limits);
}

std::uint64_t RepositoryFiles::bytes() const {
  std::uint64_t n = 0;
  for (const auto& f : weights) n += f.size;
  for (const auto& f : small) n += f.size;
  return n;
}

Result<RepositoryFiles> scan_repository(const RepositorySource& names, const std::string& dir,
                                        const RepositoryLimits& limits) {
  auto listing = names.list(dir);
  if (!listing.ok()) return listing.status();
  RepositoryFiles out;
  const bool has_index =
      std::find(listing->begin(), listing->end(), kSafetensorsIndex) != listing->end();
  std::vector<std::string> weights;
  if (has_index) {
    auto shards = indexed_shards(names, dir, limits, &out.weight_map);
    if (!shards.ok()) return shards.status();
    weights = std::move(shards).value();
    out.indexed = true;
  } else {
    for (const auto& n : *listing) {
      if (ends_with(n, ".safetensors")) weights.push_back(n);
    }
    if (weights.empty()) {
      return error(ErrorCode::kNotFound, "repository \"" + dir + "\" has no safetensors weights");
    }
  }
  for (const auto& shard : weights) {
    // A shard is a file of this directory: no path, so no way out of it.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      return error(ErrorCode::kForbidden, "the index of \"" + dir + "\" names \"" + shard +
                                              "\", which is not a file of the repository");
    }
    if (!ends_with(shard, ".safetensors")) {
      return error(ErrorCode::kLoadFailed,
                   "the index of \"" + dir + "\" names \"" + shard +
                       "\", which is not safetensors" +
                       (pickled(shard) ? " (pickled weights are never loaded)" : ""));
    }
    auto file = names.size(dir + "/" + shard);
    if (!file.ok()) {
      if (file.status().code() == ErrorCode::kNotFound) {
        return error(ErrorCode::kLoadFailed, "repository \"" + dir + "\" is missing shard \"" +
                                                 shard + "\"" +
                                                 (out.indexed ? " named by its index" : ""));
      }
      return file.status();
    }
    out.weights.push_back({shard, *file});
  }
  for (const auto& n : *listing) {
    if (ends_with(n, ".safetensors")) continue;  // weights, or not named by the index
    if (pickled(n)) {
      out.skipped.push_back(n + " (pickled)");
      continue;
    }
    if (!small_kind(n)) continue;
    auto file = names.size(dir + "/" + n);
    if (!file.ok()) {
      if (file.status().code() == ErrorCode::kForbidden) return file.status();
      continue;  // a subdirectory, or gone since the listing
    }
    if (*file > limits.max_small_file) {
      out.skipped.push_back(n + " (larger than the small-file limit)");
      continue;
    }
    out.small.push_back({n, *file});
  }
  return out;
}

}  // namespace modelpool::broker
