// File: shm/format/limits.hpp
//
// The bounds the model-format readers enforce on untrusted files. A file that
// exceeds one is refused with load_failed naming the bound; none of them is
// reached by a well-formed model written by the reference tools. They exist so
// that a hostile header cannot make a reader allocate or recurse without limit
// (every count is also checked against the bytes left in the file before
// anything is allocated for it).
#ifndef MODELPOOL_SHM_FORMAT_LIMITS_HPP_
#define MODELPOOL_SHM_FORMAT_LIMITS_HPP_

#include <cstdint>

namespace modelpool::format {

// safetensors: the JSON header (the reference implementation's own bound).
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100ULL << 20;
// safetensors: object/array nesting in the JSON header.
inline constexpr int kMaxJsonDepth = 64;

// GGUF: a metadata key (the spec's bound).
inline constexpr std::uint64_t kMaxGgufKeyBytes = 65535;
// GGUF: a tensor name (the spec's bound).
inline constexpr std::uint64_t kMaxGgufTensorNameBytes = 64;
// GGUF: a metadata string value (chat templates are the largest seen, ~100 KiB).
inline constexpr std::uint64_t kMaxGgufStringBytes = 16ULL << 20;
// GGUF: arrays inside arrays; 1 is a plain array.
inline constexpr int kMaxGgufArrayDepth = 8;
// GGUF: metadata values in all, array elements included (a 256k-token
// vocabulary with scores, types and merges is about 1M). Bounds the JSON
// built for `metadata` to a few hundred MiB.
inline constexpr std::uint64_t kMaxGgufMetadataValues = 16ULL << 20;
// GGUF: tensors in one file (the largest mixture-of-experts files have tens of
// thousands); bounds what a header's tensor_count makes the reader reserve.
inline constexpr std::uint64_t kMaxGgufTensors = 1ULL << 20;
// GGUF: dimensions of a tensor (GGML_MAX_DIMS).
inline constexpr std::uint32_t kMaxGgufDims = 4;
// GGUF: the default of `general.alignment`.
inline constexpr std::uint64_t kGgufDefaultAlignment = 32;

}  // namespace modelpool::format

#endif  // MODELPOOL_SHM_FORMAT_LIMITS_HPP_
