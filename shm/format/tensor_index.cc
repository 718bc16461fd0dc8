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

Result<TensorIndex> parse(std::span<const std::byte> file) {
  switch (detect(file)) {
    case layout::Format::kSafetensors:
      return parse_safetensors(file);
    case layout::Format::kGguf:
      return parse_gguf(file);
    case layout::Format::kRaw:
      break;
  }
  return TensorIndex{};
}

}  // namespace modelpool::format
