// File: tests/format/safetensors_corpus_test.cc
//
// The broken-safetensors corpus: one file per validation rule of the reader,
// each refused with load_failed and a message naming the rule. Then the
// well-formed corner cases the rules must not refuse.
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "tests/format/format_test_util.hpp"

namespace modelpool::format::testing {
namespace {

struct BrokenFile {
  const char* name;
  std::string bytes;
  const char* reason;
  friend void PrintTo(const BrokenFile& f, std::ostream* os) { *os << f.name; }
};

std::string one(std::string_view entry, std::size_t data_bytes) {
  return safetensors_file("{\"t\":" + std::string(entry) + "}", data_bytes);
}

std::vector<BrokenFile> header_rules() {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  return {
      {"ShorterThanLength", "abc", "shorter than the 8-byte header length"},
      {"HeaderOverLimit", u64((100ULL << 20) + 1) + "{}", "exceeds the limit of 104857600"},
      {"HeaderPastEof", u64(100) + "{}", "runs past the end of the file"},
      {"NotJson", safetensors_file("{not json}"), "not valid JSON"},
      {"BadUtf8", safetensors_file("{\"a\xff\":1}"), "UTF-8"},
      {"TrailingGarbage", safetensors_file("{} x"), "not valid JSON"},
      {"NotAnObject", safetensors_file("[1,2]"), "header is not a JSON object"},
      {"TooDeep", safetensors_file("{\"__metadata__\":" + deep + "}"), "nested deeper than 64"},
      {"DuplicateTensor",
       safetensors_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                        R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                        2),
       "duplicate key \"a\""},
      {"DuplicateField", one(R"({"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]})", 1),
       "duplicate key \"dtype\""},
  };
}

std::vector<BrokenFile> tensor_rules() {
  return {
      {"EntryNotObject", one("5", 0), "entry is not an object"},
      {"DtypeMissing", one(R"({"shape":[1],"data_offsets":[0,1]})", 1),
       "\"dtype\" must be a string"},
      {"UnknownDtype", one(R"({"dtype":"F7","shape":[1],"data_offsets":[0,1]})", 1),
       "unknown dtype \"F7\""},
      {"ShapeMissing", one(R"({"dtype":"U8","data_offsets":[0,1]})", 1),
       "\"shape\" must be an array"},
      {"ShapeNegative", one(R"({"dtype":"U8","shape":[-1],"data_offsets":[0,1]})", 1),
       "shape entries must be non-negative integers"},
      {"ShapeFloat", one(R"({"dtype":"U8","shape":[1.5],"data_offsets":[0,1]})", 1),
       "shape entries must be non-negative integers"},
      {"ShapeHuge", one(R"({"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]})", 1),
       "shape entries must be non-negative integers"},
      {"ElementCountOverflow",
       one(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]})", 1),
       "shape element count overflows"},
      {"ByteSizeOverflow",
       one(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,1]})", 1),
       "byte size overflows"},
      {"OffsetsNotPair", one(R"({"dtype":"U8","shape":[1],"data_offsets":[0]})", 1),
       "\"data_offsets\" must be [begin, end]"},
      {"OffsetsNegative", one(R"({"dtype":"U8","shape":[1],"data_offsets":[-1,0]})", 1),
       "\"data_offsets\" must be [begin, end]"},
      {"OffsetsReversed", one(R"({"dtype":"U8","shape":[0],"data_offsets":[1,0]})", 1),
       "0 <= begin <= end"},
      {"SizeMismatch", one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})", 8),
       "does not match the 8 bytes of F32"},
      {"PastDataSection", one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4),
       "lies outside the data section of 4 bytes"},
      {"Overlap",
       safetensors_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        12),
       "overlap"},
      {"MetadataNotObject", safetensors_file(R"({"__metadata__":["x"]})"),
       "\"__metadata__\" must be an object"},
      {"MetadataNotString", safetensors_file(R"({"__metadata__":{"k":1}})"),
       "\"__metadata__\" value of \"k\" is not a string"},
  };
}

class SafetensorsCorpus : public ::testing::TestWithParam<BrokenFile> {};

TEST_P(SafetensorsCorpus, RefusedWithReason) {
  EXPECT_TRUE(fails_with(parse_safetensors(bytes_of(GetParam().bytes)), GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(Header, SafetensorsCorpus, ::testing::ValuesIn(header_rules()),
                         [](const auto& info) { return std::string(info.param.name); });
INSTANTIATE_TEST_SUITE_P(Tensors, SafetensorsCorpus, ::testing::ValuesIn(tensor_rules()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Safetensors, EmptyHeaderIsAnEmptyIndex) {
  auto r = parse_safetensors(bytes_of(safetensors_file("{}")));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->format, layout::Format::kSafetensors);
  EXPECT_TRUE(r->tensors.empty());
  EXPECT_TRUE(r->metadata.empty());
}

TEST(Safetensors, GapsUnknownFieldsAndPaddingAreAccepted) {
  const std::string header =
      R"({"b":{"dtype":"I16","shape":[2],"data_offsets":[8,12],"extra":true},)"
      R"("a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"z":{"dtype":"F32",)"
      R"("shape":[0,5],"data_offsets":[3,3]}}    )";
  const std::string file = safetensors_file(header, 12);
  auto r = parse_safetensors(bytes_of(file));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->tensors.size(), 3U);
  const std::uint64_t data = 8 + header.size();
  EXPECT_EQ(r->tensors[0].name, "a");  // by offset, not by name or header order
  EXPECT_EQ(r->tensors[0].offset, data);
  EXPECT_EQ(r->tensors[1].name, "z");
  EXPECT_EQ(r->tensors[1].size, 0U);
  EXPECT_EQ(r->tensors[2].name, "b");
  EXPECT_EQ(r->tensors[2].offset, data + 8);
  EXPECT_EQ(r->tensors[2].shape, std::vector<std::int64_t>{2});
  EXPECT_TRUE(index_is_sane(*r, file.size()));
  EXPECT_EQ(r->find("b"), &r->tensors[2]);
  EXPECT_EQ(r->find("nope"), nullptr);
}

TEST(Safetensors, ErrorMessagesEscapeUntrustedNames) {
  auto r = parse_safetensors(bytes_of(one(R"({"dtype":"\u00e9\n","shape":[1]})", 1)));
  EXPECT_TRUE(fails_with(r, "unknown dtype \"\\xc3\\xa9\\x0a\""));
}

}  // namespace
}  // namespace modelpool::format::testing
