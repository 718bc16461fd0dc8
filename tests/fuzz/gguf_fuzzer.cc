// File: tests/fuzz/gguf_fuzzer.cc
//
// libFuzzer target: parse_gguf, and parse() (detection + dispatch), on
// arbitrary bytes. Metadata filters change what is built, never the verdict:
// a parse that builds no metadata (the broker's, a worker's) or one key
// accepts and rejects exactly the files a full parse does, with the same
// tensors. Seeds: corpus/gguf.
#include <cstddef>
#include <cstdint>
#include <span>

#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using modelpool::format::MetadataFilter;
  const auto file = std::as_bytes(std::span(data, size));
  const auto full = modelpool::format::parse_gguf(file);
  modelpool::fuzz::check_index(full, size);
  for (const MetadataFilter& f :
       {MetadataFilter::none(), MetadataFilter::only("general.architecture")}) {
    const auto filtered = modelpool::format::parse_gguf(file, f);
    modelpool::fuzz::check_index(filtered, size);
    modelpool::fuzz::require(filtered.ok() == full.ok(), "the filter does not change the verdict");
    if (full.ok()) {
      modelpool::fuzz::require(filtered->tensors.size() == full->tensors.size(),
                               "the filter does not change the tensors");
      modelpool::fuzz::require(filtered->metadata.size() <= 1, "the filter builds at most one key");
    } else {
      modelpool::fuzz::require(filtered.status().message() == full.status().message(),
                               "the filter does not change the reason");
    }
  }
  modelpool::fuzz::check_index(modelpool::format::parse(file), size);
  return 0;
}
