// File: tests/fuzz/safetensors_fuzzer.cc
//
// libFuzzer target: parse_safetensors, and parse() (detection + dispatch), on
// arbitrary bytes. Seeds: corpus/safetensors.
#include <cstddef>
#include <cstdint>
#include <span>

#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = std::as_bytes(std::span(data, size));
  modelpool::fuzz::check_index(modelpool::format::parse_safetensors(file), size);
  modelpool::fuzz::check_index(modelpool::format::parse(file), size);
  return 0;
}
