// File: tests/fuzz/fuzz_check.hpp
//
// What every fuzz target asserts beyond "no crash, no sanitizer report": the
// contracts of the code under test. A broken contract aborts, which libFuzzer
// reports as a crash and saves as an artifact.
#ifndef MODELPOOL_TESTS_FUZZ_FUZZ_CHECK_HPP_
#define MODELPOOL_TESTS_FUZZ_FUZZ_CHECK_HPP_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "shm/format/tensor_index.hpp"

namespace modelpool::fuzz {

[[noreturn]] inline void contract_broken(const char* what) {
  std::fprintf(stderr, "contract broken: %s\n", what);
  std::abort();
}

inline void require(bool ok, const char* what) {
  if (!ok) contract_broken(what);
}

// A parse result is either an index that lies inside the file, sorted by
// offset with disjoint tensors and JSON-serialisable metadata, or
// load_failed with a printable-ASCII message.
inline void check_index(const Result<format::TensorIndex>& r, std::uint64_t file_size) {
  if (!r.ok()) {
    require(r.status().code() == ErrorCode::kLoadFailed, "readers fail with load_failed");
    for (char c : r.status().message()) {
      const auto u = static_cast<unsigned char>(c);
      require(u >= 0x20 && u < 0x7f, "error messages are printable ASCII");
    }
    return;
  }
  std::uint64_t prev = 0;
  std::uint64_t reach = 0;
  for (const format::TensorInfo& t : r->tensors) {
    require(t.offset <= file_size && t.size <= file_size - t.offset, "tensor inside the file");
    require(t.offset >= prev, "tensors sorted by offset");
    require(t.size == 0 || t.offset >= reach, "tensors do not overlap");
    for (std::int64_t d : t.shape) require(d >= 0, "dimensions are non-negative");
    prev = t.offset;
    if (t.size > 0) reach = t.offset + t.size;
  }
  // Throws (and so aborts the fuzzer) on invalid UTF-8.
  const std::string dumped = r->metadata.dump();
  require(!dumped.empty(), "metadata serialises");
}

}  // namespace modelpool::fuzz

#endif  // MODELPOOL_TESTS_FUZZ_FUZZ_CHECK_HPP_
