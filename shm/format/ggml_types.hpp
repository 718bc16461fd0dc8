// File: shm/format/ggml_types.hpp
//
// The ggml tensor types a GGUF file may name: their numeric id, their name
// (the dtype string of TensorInfo, as gguf-py and llama.cpp spell it), and
// their storage: `block_size` elements are stored in `type_size` bytes. A
// row's ne[0] must be a multiple of block_size. Internal to shm/format; the
// table is constant, so thread-safe.
#ifndef MODELPOOL_SHM_FORMAT_GGML_TYPES_HPP_
#define MODELPOOL_SHM_FORMAT_GGML_TYPES_HPP_

#include <cstdint>
#include <string_view>

namespace modelpool::format {

struct GgmlType {
  std::uint32_t id;
  std::string_view name;
  std::uint32_t block_size;  // elements per block
  std::uint32_t type_size;   // bytes per block
};

// The type numbered `id`, or nullptr for ids that are unknown or were removed
// from the format (Q4_2, Q4_3, the Q4_0_4_4 repacks, ...).
const GgmlType* find_ggml_type(std::uint32_t id);

}  // namespace modelpool::format

#endif  // MODELPOOL_SHM_FORMAT_GGML_TYPES_HPP_
