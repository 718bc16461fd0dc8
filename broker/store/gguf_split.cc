// File: broker/store/gguf_split.cc
#include "broker/store/gguf_split.hpp"

#include <sys/mman.h>

#include <charconv>
#include <cstdio>
#include <span>

#include "shm/format/tensor_index.hpp"

namespace modelpool::broker {
namespace {

constexpr std::string_view kSuffix = ".gguf";
constexpr unsigned kMaxParts = 99999;  // five digits

std::optional<unsigned> five_digits(std::string_view s) {
  if (s.size() != 5) return std::nullopt;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// What one part says about itself: split.* and its number of tensors.
struct PartInfo {
  std::optional<std::uint64_t> no, count, tensors_total;
  std::uint64_t tensors = 0;
  std::uint64_t size = 0;
};

std::optional<std::uint64_t> unsigned_value(const nlohmann::json& meta, const char* key) {
  const auto it = meta.find(key);
  if (it == meta.end() || !it->is_number_integer()) return std::nullopt;
  const auto v = it->get<std::int64_t>();
  return v < 0 ? std::nullopt : std::optional<std::uint64_t>(static_cast<std::uint64_t>(v));
}

Result<PartInfo> read_part(const NameResolver& names, const std::string& part) {
  auto file = names.resolve(part);
  if (!file.ok()) return file.status();
  PartInfo info;
  info.size = file->identity().size;
  if (info.size == 0) return error(ErrorCode::kLoadFailed, "split part \"" + part + "\" is empty");
  void* map = ::mmap(nullptr, info.size, PROT_READ, MAP_PRIVATE, file->fd(), 0);
  if (map == MAP_FAILED) {
    return error(ErrorCode::kLoadFailed, "cannot map split part \"" + part + "\"");
  }
  auto index = format::parse_gguf(std::span(static_cast<const std::byte*>(map), info.size),
                                  format::MetadataFilter::prefix("split."));
  ::munmap(map, info.size);
  if (!index.ok()) {
    return error(ErrorCode::kLoadFailed,
                 "split part \"" + part + "\" is not valid GGUF: " + index.status().message());
  }
  info.no = unsigned_value(index->metadata, "split.no");
  info.count = unsigned_value(index->metadata, "split.count");
  info.tensors_total = unsigned_value(index->metadata, "split.tensors.count");
  info.tensors = index->tensors.size();
  return info;
}

}  // namespace

std::optional<SplitName> parse_split_name(std::string_view name) {
  // PREFIX-NNNNN-of-NNNNN.gguf: 16 characters after the prefix, plus ".gguf".
  constexpr std::size_t kTail = 1 + 5 + 4 + 5;
  if (name.size() <= kTail + kSuffix.size() ||
      name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  const std::string_view tail = name.substr(name.size() - kSuffix.size() - kTail, kTail);
  if (tail[0] != '-' || tail.substr(6, 4) != "-of-") return std::nullopt;
  const auto no = five_digits(tail.substr(1, 5));
  const auto count = five_digits(tail.substr(10, 5));
  if (!no || !count || *no == 0 || *count == 0 || *no > *count) return std::nullopt;
  return SplitName{std::string(name.substr(0, name.size() - kSuffix.size() - kTail)), *no, *count};
}

std::string split_part_name(std::string_view prefix, unsigned no, unsigned count) {
  char tail[32];
  std::snprintf(tail, sizeof tail, "-%05u-of-%05u.gguf", no, count);
  return std::string(prefix) + tail;
}

Result<SplitSet> gguf_split_set(const NameResolver& names, std::string_view name) {
  const auto split = parse_split_name(name);
  if (!split || split->count > kMaxParts) {
    return error(ErrorCode::kInvalidName, "\"" + std::string(name) + "\" is not a split GGUF part");
  }
  if (auto self = names.resolve(name); !self.ok()) return self.status();
  const std::string set = split_part_name(split->prefix, 1, split->count);
  SplitSet out;
  std::uint64_t tensors_seen = 0;
  for (unsigned i = 1; i <= split->count; ++i) {
    const std::string part = split_part_name(split->prefix, i, split->count);
    auto info = read_part(names, part);
    if (!info.ok()) {
      if (info.status().code() == ErrorCode::kNotFound) {
        return error(ErrorCode::kLoadFailed,
                     "split set " + set + " is incomplete: part " + std::to_string(i) + " of " +
                         std::to_string(split->count) + " (" + part + ") is missing");
      }
      return info.status();
    }
    auto says = [&](const std::string& what) {
      return error(ErrorCode::kLoadFailed,
                   "split set " + set + " is inconsistent: " + part + " " + what);
    };
    if (!info->no || !info->count || !info->tensors_total) {
      return says("lacks split.no, split.count or split.tensors.count");
    }
    if (*info->no != i - 1) {
      return says("has split.no " + std::to_string(*info->no) + ", not " + std::to_string(i - 1));
    }
    if (*info->count != split->count) {
      return says("has split.count " + std::to_string(*info->count) + ", the names say " +
                  std::to_string(split->count));
    }
    if (i == 1) out.tensors = *info->tensors_total;
    if (*info->tensors_total != out.tensors) {
      return says("has split.tensors.count " + std::to_string(*info->tensors_total) +
                  ", the first part " + std::to_string(out.tensors));
    }
    tensors_seen += info->tensors;
    out.bytes += info->size;
    out.parts.push_back(part);
  }
  if (tensors_seen != out.tensors) {
    return error(ErrorCode::kLoadFailed, "split set " + set + " is inconsistent: its parts hold " +
                                             std::to_string(tensors_seen) +
                                             " tensors, split.tensors.count says " +
                                             std::to_string(out.tensors));
  }
  return out;
}

}  // namespace modelpool::broker
