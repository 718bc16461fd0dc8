// File: tests/format/gguf_corpus_test.cc
//
// The broken-GGUF corpus: one file per validation rule of the reader, each
// refused with load_failed and a message naming the rule.
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "tests/format/gguf_builder.hpp"

namespace modelpool::format::testing {
namespace {

struct BrokenFile {
  const char* name;
  std::string bytes;
  const char* reason;
  friend void PrintTo(const BrokenFile& f, std::ostream* os) { *os << f.name; }
};

std::string header(std::uint32_t version, std::uint64_t tensors, std::uint64_t kvs) {
  return "GGUF" + u32(version) + u64(tensors) + u64(kvs);
}

// A file whose one pair has `type` and `value` bytes, then 64 spare bytes.
std::string one_kv(std::uint32_t type, const std::string& value) {
  return GgufBuilder().kv("k", type, value).build(64);
}

// A file with one F32 tensor info of `ne` at `offset` and `data` bytes.
std::string one_tensor(const std::vector<std::uint64_t>& ne, std::uint32_t type,
                       std::uint64_t offset = 0, std::size_t data = 64) {
  return GgufBuilder().tensor("t", ne, type, offset).build(data);
}

std::string nested_arrays(int depth) {
  std::string v = u32(kU8) + u64(0);
  for (int i = 1; i < depth; ++i) v = u32(kArr) + u64(1) + v;
  return v;
}

std::vector<BrokenFile> header_and_metadata() {
  return {
      {"BadMagic", "GGUX" + u32(3) + u64(0) + u64(0), "missing the GGUF magic"},
      {"TruncatedHeader", "GGUF" + u32(3) + "abcd", "truncated at byte 8 reading tensor_count"},
      {"Version1", header(1, 0, 0), "GGUF version 1 is not supported"},
      {"Version4", header(4, 0, 0), "unsupported GGUF version 4"},
      {"BigEndian", "GGUF" + std::string("\0\0\0\3", 4) + u64(0) + u64(0), "big-endian"},
      {"KvCountCannotFit", header(3, 0, 1000000000000) + std::string(64, '\0'),
       "metadata_kv_count 1000000000000 cannot fit"},
      {"TensorCountCannotFit", header(3, 1000, 0) + std::string(64, '\0'),
       "tensor_count 1000 cannot fit in the 64 bytes left"},
      {"TensorCountOverLimit", header(3, (1ULL << 20) + 1, 0),
       "tensor_count 1048577 exceeds the limit of 1048576"},
      {"TensorCountCannotFitAfterMetadata",
       GgufBuilder().kv("k", kStr, gguf_str(std::string(40, 'x'))).tensor_count(2).build(0),
       "tensor_count 2 cannot fit"},
      {"KeyPastEof", header(3, 0, 1) + u64(1000) + std::string(20, 'k'),
       "string of 1000 bytes at byte 32 runs past the end of the file"},
      {"KeyTooLong", GgufBuilder().kv(std::string(65536, 'k'), kU8, "\1").build(0),
       "exceeds the limit of 65535"},
      {"KeyEmpty", GgufBuilder().kv("", kU8, "\1").build(0), "metadata key #0 is empty"},
      {"KeyBadUtf8", GgufBuilder().kv("a\xc3\x28", kU8, "\1").build(0), "is not valid UTF-8"},
      {"ValueBadUtf8", one_kv(kStr, gguf_str("\xed\xa0\x80")), "is not valid UTF-8"},
      {"ValueStringTooLong", one_kv(kStr, u64((16ULL << 20) + 1)), "exceeds the limit of 16777216"},
      {"UnknownValueType", one_kv(13, ""), "unknown metadata value type 13"},
      {"TruncatedValue", header(3, 0, 1) + gguf_str("k") + u32(kU64) + "abc",
       "truncated at byte 37 reading a metadata value"},
      {"BoolNotZeroOrOne", one_kv(kBool, "\2"), "bool value 2 is neither 0 nor 1"},
      {"ArrayUnknownElementType", one_kv(kArr, u32(99) + u64(1)),
       "unknown metadata value type 99 in an array"},
      {"ArrayCannotFit", one_kv(kArr, u32(kI32) + u64(1000)), "array of 1000 elements cannot fit"},
      {"ArrayOverValueBudget", one_kv(kArr, u32(kU8) + u64(1ULL << 40)),
       "exceeds the limit of 16777216 metadata values"},
      {"ArraysTooDeep", one_kv(kArr, nested_arrays(9)), "arrays nested deeper than 8 levels"},
      {"DuplicateKey", GgufBuilder().kv_u32("a.b", 1).kv_u32("a.b", 2).build(0),
       "duplicate metadata key \"a.b\""},
      {"AlignmentNotPowerOfTwo", GgufBuilder().kv_u32("general.alignment", 48).build(0),
       "general.alignment 48 is not a power of two"},
      {"AlignmentZero", GgufBuilder().kv_u32("general.alignment", 0).build(0),
       "general.alignment 0 is not a power of two"},
      {"AlignmentWrongType", GgufBuilder().kv("general.alignment", kU64, u64(32)).build(0),
       "general.alignment must be a uint32"},
  };
}

std::vector<BrokenFile> tensor_infos() {
  const std::uint64_t big = 1ULL << 32;
  return {
      {"NameTooLong", GgufBuilder().tensor(std::string(65, 'n'), {1}, kF32, 0).build(64),
       "tensor #0 name: string of 65 bytes exceeds the limit of 64"},
      {"NameBadUtf8", GgufBuilder().tensor("\xff", {1}, kF32, 0).build(64), "not valid UTF-8"},
      {"TooManyDims", one_tensor({1, 1, 1, 1, 1}, kF32), "has 5 dimensions (at most 4)"},
      {"TruncatedDims", GgufBuilder().tensor_raw(gguf_str("tensor_name") + u32(2) + u64(1)).head(),
       "reading tensor dimensions"},
      {"UnknownGgmlType", one_tensor({32}, 4), "unknown ggml type 4"},
      {"NotWholeBlocks", one_tensor({128}, kQ4_K),
       "ne[0] = 128 is not a multiple of the block size 256 of Q4_K"},
      {"ElementCountOverflow", one_tensor({big, big}, kF32), "element count overflows 63 bits"},
      {"DimensionOverInt64", one_tensor({0, 1ULL << 63}, kF32), "exceeds the int64 range"},
      {"ByteSizeOverflow", one_tensor({1ULL << 62}, 28), "byte size overflows 64 bits"},
      {"OffsetUnaligned", one_tensor({4}, kF32, 4),
       "offset 4 is not a multiple of the alignment 32"},
      {"OffsetOverflows", one_tensor({4}, kF32, ~std::uint64_t{31}), "offset overflows 64 bits"},
      {"TensorPastEof", one_tensor({32}, kF32, 0, 64), "lies outside the data section"},
      {"Overlap", GgufBuilder().tensor("a", {32}, kF32, 0).tensor("b", {32}, kF32, 64).build(192),
       "tensors \"a\" [96, 224) and \"b\" [160, 288) overlap"},
      {"DuplicateName",
       GgufBuilder().tensor("a", {8}, kF32, 0).tensor("a", {8}, kF32, 32).build(64),
       "duplicate tensor name \"a\""},
      {"DataSectionPastEof", GgufBuilder().tensor("t", {0}, kF32, 0).head(),
       "starts past the end of the file"},
  };
}

class GgufCorpus : public ::testing::TestWithParam<BrokenFile> {};

TEST_P(GgufCorpus, RefusedWithReason) {
  EXPECT_TRUE(fails_with(parse_gguf(bytes_of(GetParam().bytes)), GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(Metadata, GgufCorpus, ::testing::ValuesIn(header_and_metadata()),
                         [](const auto& info) { return std::string(info.param.name); });
INSTANTIATE_TEST_SUITE_P(Tensors, GgufCorpus, ::testing::ValuesIn(tensor_infos()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace modelpool::format::testing
