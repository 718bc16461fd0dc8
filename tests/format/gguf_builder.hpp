// File: tests/format/gguf_builder.hpp
//
// Builds GGUF v2/v3 files byte by byte for the broken-file corpus: each part
// (key-value pair, tensor info) is appended as raw bytes, so a test can write
// exactly the malformed field it needs, and counts can be overridden.
#ifndef MODELPOOL_TESTS_FORMAT_GGUF_BUILDER_HPP_
#define MODELPOOL_TESTS_FORMAT_GGUF_BUILDER_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/format/format_test_util.hpp"

namespace modelpool::format::testing {

// gguf_metadata_value_type and a few ggml_type ids.
enum : std::uint32_t { kU8 = 0, kI32 = 5, kBool = 7, kStr = 8, kArr = 9, kU64 = 10 };
enum : std::uint32_t { kF32 = 0, kQ8_0 = 8, kQ4_K = 12 };

inline std::string gguf_str(std::string_view s) { return u64(s.size()) + std::string(s); }

class GgufBuilder {
 public:
  explicit GgufBuilder(std::uint32_t version = 3) : version_(version) {}

  // A pair whose value bytes are given verbatim (after the type).
  GgufBuilder& kv(std::string_view key, std::uint32_t type, const std::string& value) {
    kvs_.push_back(gguf_str(key) + u32(type) + value);
    return *this;
  }
  GgufBuilder& kv_u32(std::string_view key, std::uint32_t v) { return kv(key, 4, u32(v)); }
  GgufBuilder& kv_str(std::string_view key, std::string_view v) {
    return kv(key, kStr, gguf_str(v));
  }

  GgufBuilder& tensor(std::string_view name, const std::vector<std::uint64_t>& ne,
                      std::uint32_t type, std::uint64_t offset) {
    std::string t = gguf_str(name) + u32(static_cast<std::uint32_t>(ne.size()));
    for (std::uint64_t n : ne) t += u64(n);
    infos_.push_back(t + u32(type) + u64(offset));
    return *this;
  }
  GgufBuilder& tensor_raw(const std::string& bytes) {
    infos_.push_back(bytes);
    return *this;
  }
  GgufBuilder& tensor_count(std::uint64_t n) {
    tensor_count_ = n;
    return *this;
  }
  GgufBuilder& kv_count(std::uint64_t n) {
    kv_count_ = n;
    return *this;
  }

  // Everything before the padding: header, pairs, tensor infos.
  std::string head() const {
    std::string out = "GGUF" + u32(version_) + u64(tensor_count_.value_or(infos_.size())) +
                      u64(kv_count_.value_or(kvs_.size()));
    for (const std::string& s : kvs_) out += s;
    for (const std::string& s : infos_) out += s;
    return out;
  }

  // head(), zero padding to `alignment`, then `data_bytes` of data.
  std::string build(std::size_t data_bytes, std::size_t alignment = 32) const {
    std::string out = head();
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
    out.append(data_bytes, '\x5a');
    return out;
  }

 private:
  std::uint32_t version_;
  std::optional<std::uint64_t> tensor_count_;
  std::optional<std::uint64_t> kv_count_;
  std::vector<std::string> kvs_;
  std::vector<std::string> infos_;
};

}  // namespace modelpool::format::testing

#endif  // MODELPOOL_TESTS_FORMAT_GGUF_BUILDER_HPP_
