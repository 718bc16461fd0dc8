// File: tests/format/gguf_test.cc
//
// Well-formed GGUF corner cases the reader must accept, built byte by byte.
#include <gtest/gtest.h>

#include "tests/format/gguf_builder.hpp"

namespace modelpool::format::testing {
namespace {

TEST(Gguf, HeaderOnlyIsAnEmptyIndex) {
  auto r = parse_gguf(bytes_of(GgufBuilder(2).head()));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->format, layout::Format::kGguf);
  EXPECT_TRUE(r->tensors.empty());
  EXPECT_TRUE(r->metadata.empty());
}

TEST(Gguf, ScalarAndEmptyTensors) {
  const std::string file =
      GgufBuilder().tensor("scalar", {}, kF32, 0).tensor("none", {0, 7}, kQ8_0, 32).build(32);
  auto r = parse_gguf(bytes_of(file));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->tensors.size(), 2U);
  EXPECT_EQ(r->tensors[0].name, "scalar");
  EXPECT_TRUE(r->tensors[0].shape.empty());
  EXPECT_EQ(r->tensors[0].size, 4U);
  EXPECT_EQ(r->tensors[1].dtype, "Q8_0");
  EXPECT_EQ(r->tensors[1].size, 0U);
  EXPECT_EQ(r->tensors[1].offset, file.size());  // empty, at the very end: allowed
  EXPECT_TRUE(index_is_sane(*r, file.size()));
}

TEST(Gguf, AlignmentKeyMovesTheDataSection) {
  const std::string file = GgufBuilder()
                               .kv_u32("general.alignment", 256)
                               .tensor("w", {256, 2}, kQ4_K, 0)
                               .tensor("b", {2}, kF32, 512)
                               .build(1024, 256);
  auto r = parse_gguf(bytes_of(file));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->metadata["general.alignment"], 256);
  ASSERT_EQ(r->tensors.size(), 2U);
  EXPECT_EQ(r->tensors[0].offset, 256U);
  EXPECT_EQ(r->tensors[0].size, 2U * 144U);
  EXPECT_EQ(r->tensors[0].shape, (std::vector<std::int64_t>{256, 2}));
  EXPECT_EQ(r->tensors[1].offset, 256U + 512U);
}

TEST(Gguf, TensorsAreListedByOffsetNotByInfoOrder) {
  const std::string file =
      GgufBuilder().tensor("second", {8}, kF32, 32).tensor("first", {8}, kF32, 0).build(64);
  auto r = parse_gguf(bytes_of(file));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->tensors.size(), 2U);
  EXPECT_EQ(r->tensors[0].name, "first");
  EXPECT_EQ(r->tensors[1].name, "second");
}

TEST(Gguf, EightLevelsOfArraysAreAllowed) {
  std::string v = u32(kU8) + u64(1) + "\7";
  for (int i = 1; i < 8; ++i) v = u32(kArr) + u64(1) + v;
  auto r = parse_gguf(bytes_of(GgufBuilder().kv("deep", kArr, v).build(0)));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->metadata["deep"].dump(), "[[[[[[[[7]]]]]]]]");
}

}  // namespace
}  // namespace modelpool::format::testing
