// File: tests/format/format_test_util.hpp
//
// Helpers of the format reader tests: model files are built in std::string
// (bytes), little-endian integer encoders, a safetensors file from a header
// text, and the invariants every successfully parsed index must satisfy.
#ifndef MODELPOOL_TESTS_FORMAT_FORMAT_TEST_UTIL_HPP_
#define MODELPOOL_TESTS_FORMAT_FORMAT_TEST_UTIL_HPP_

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shm/format/tensor_index.hpp"

namespace modelpool::format::testing {

inline std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline std::string le(std::uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}
inline std::string u32(std::uint32_t v) { return le(v, 4); }
inline std::string u64(std::uint64_t v) { return le(v, 8); }

// The 8-byte length, `header` verbatim, then `data_bytes` zero bytes.
inline std::string safetensors_file(std::string_view header, std::size_t data_bytes = 0) {
  return u64(header.size()) + std::string(header) + std::string(data_bytes, '\0');
}

// Every tensor inside the file, sorted by offset, non-empty ones disjoint.
::testing::AssertionResult index_is_sane(const TensorIndex& index, std::uint64_t file_size);

// `r` failed with load_failed and its message contains `reason`.
::testing::AssertionResult fails_with(const Result<TensorIndex>& r, std::string_view reason);

}  // namespace modelpool::format::testing

#endif  // MODELPOOL_TESTS_FORMAT_FORMAT_TEST_UTIL_HPP_
