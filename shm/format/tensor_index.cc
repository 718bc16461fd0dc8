// File: shm/format/tensor_index.cc
//
// Format detection and dispatch to the readers. Detection looks only at the
// first bytes: the GGUF magic, or a safetensors header length that is
// plausible for this file followed by '{'. Anything else is raw.
#include "shm/format/tensor_index.hpp"

#include "shm/format/limits.hpp"
#include "shm/format/reader_util.hpp"

namespace modelpool::format {

const TensorInfo* TensorIndex::find(std::string_view name) const {
  for (const TensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

layout::Format detect(std::span<const std::byte> file) {
  ByteCursor cur(file);
  std::string_view magic;
  if (cur.read_bytes(4, &magic) && magic == "GGUF") return layout::Format::kGguf;
  cur = ByteCursor(file);
  std::uint64_t n = 0;
  if (cur.read(&n) && n >= 2 && n <= kMaxSafetensorsHeaderBytes && n <= cur.remaining() &&
      file[8] == std::byte{'{'}) {
    return layout::Format::kSafetensors;
  }
  return layout::Format::kRaw;
}

layout::Format format_for_name(std::string_view name) {
  const std::size_t slash = name.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  if (base.size() > 12 && base.ends_with(".safetensors")) return layout::Format::kSafetensors;
  if (base.size() > 5 && base.ends_with(".gguf")) return layout::Format::kGguf;
  return layout::Format::kRaw;
}

Result<TensorIndex> parse(std::span<const std::byte> file, const MetadataFilter& metadata) {
  switch (detect(file)) {
    case layout::Format::kSafetensors:
      return parse_safetensors(file);
    case layout::Format::kGguf:
      return parse_gguf(file, metadata);
    case layout::Format::kRaw:
      break;
  }
  return TensorIndex{};
}

}  // namespace modelpool::format
