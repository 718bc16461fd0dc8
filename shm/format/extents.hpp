// File: shm/format/extents.hpp
//
// The check both readers end with: every tensor's bytes lie inside the data
// section and no two tensors share a byte. It also fixes the order of the
// index: file order, i.e. ascending offset. Internal to shm/format.
#ifndef MODELPOOL_SHM_FORMAT_EXTENTS_HPP_
#define MODELPOOL_SHM_FORMAT_EXTENTS_HPP_

#include <cstdint>
#include <string_view>
#include <vector>

#include "shm/format/tensor_index.hpp"

namespace modelpool::format {

// Sorts `tensors` by offset (a stable sort: ties keep the reader's order) and
// checks [offset, offset + size) lies in [begin, end) for each and that no two
// non-empty tensors overlap. Empty tensors may sit anywhere in [begin, end].
// `format` prefixes the message ("safetensors", "gguf").
Status place_tensors(std::string_view format, std::vector<TensorInfo>* tensors, std::uint64_t begin,
                     std::uint64_t end);

}  // namespace modelpool::format

#endif  // MODELPOOL_SHM_FORMAT_EXTENTS_HPP_
