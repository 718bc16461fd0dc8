// File: shm/format/tensor_index.hpp
//
// The tensor index of a model file: what the safetensors and GGUF readers
// produce, what the broker validates at load and what the client library
// exposes as zero-copy tensor views. Readers treat the bytes as untrusted:
// every offset in a returned index lies inside the file, and tensors do not
// overlap. Pure functions; thread-safe.
#ifndef MODELPOOL_SHM_FORMAT_TENSOR_INDEX_HPP_
#define MODELPOOL_SHM_FORMAT_TENSOR_INDEX_HPP_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shm/format/limits.hpp"
#include "shm/layout/segment_layout.hpp"
#include "shm/status.hpp"

namespace modelpool::format {

struct TensorInfo {
  std::string name;
  std::string dtype;  // as the format spells it: "F32", "BF16", "Q4_K", ...
  // safetensors: as in the header (row-major, outermost first). GGUF: ggml's
  // ne[] as stored, ne[0] (the contiguous dimension) first.
  std::vector<std::int64_t> shape;
  std::uint64_t offset = 0;  // from the start of the file
  std::uint64_t size = 0;    // bytes
};

struct TensorIndex {
  layout::Format format = layout::Format::kRaw;
  std::vector<TensorInfo> tensors;                     // in file order: ascending offset
  nlohmann::json metadata = nlohmann::json::object();  // safetensors __metadata__ / GGUF key-values

  // The tensor called `name`, or nullptr.
  const TensorInfo* find(std::string_view name) const;
};

// Which GGUF metadata values a parse turns into TensorIndex::metadata. Every
// value is validated whatever the filter; the ones left out allocate nothing,
// so what a parse holds stays proportional to the tensor infos, not to the
// metadata arrays (a vocabulary of millions of entries). safetensors
// metadata (a string map inside the JSON header) is always built.
struct MetadataFilter {
  enum class Kind { kAll, kNone, kKey, kPrefix };
  Kind kind = Kind::kAll;
  std::string key;  // kKey: the one key built; kPrefix: the keys starting with it

  static MetadataFilter none() { return {Kind::kNone, {}}; }
  static MetadataFilter only(std::string key) { return {Kind::kKey, std::move(key)}; }
  static MetadataFilter prefix(std::string p) { return {Kind::kPrefix, std::move(p)}; }
  bool wants(std::string_view k) const {
    return kind == Kind::kAll || (kind == Kind::kKey && k == key) ||
           (kind == Kind::kPrefix && k.substr(0, key.size()) == key);
  }
};

// Which reader applies to `file` (by magic/header shape); kRaw when none.
layout::Format detect(std::span<const std::byte> file);

// The format a file's name promises: kSafetensors for "*.safetensors", kGguf
// for "*.gguf" (case-sensitive, as the reference tools write them), else
// kRaw. A file that promises a format must parse as it.
layout::Format format_for_name(std::string_view name);

// Detects the format and validates the whole index against the file size.
// kRaw files give an empty index. Invalid files give load_failed with the
// precise reason.
Result<TensorIndex> parse(std::span<const std::byte> file, const MetadataFilter& metadata = {});

Result<TensorIndex> parse_safetensors(std::span<const std::byte> file);
Result<TensorIndex> parse_gguf(std::span<const std::byte> file,
                               const MetadataFilter& metadata = {});

}  // namespace modelpool::format

#endif  // MODELPOOL_SHM_FORMAT_TENSOR_INDEX_HPP_
