// File: tests/store/gguf_split_test.cc
//
// Split GGUF sets as llama.cpp's gguf-split writes them (split.no from 0,
// split.count, split.tensors.count in every part; PREFIX-NNNNN-of-NNNNN.gguf),
// built byte by byte on real files: any part's name finds the whole set, and
// an incomplete or inconsistent set is refused with the part and the reason.
#include "broker/store/gguf_split.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "store_test_util.hpp"
#include "tests/format/gguf_builder.hpp"

namespace modelpool::broker {
namespace {

using format::testing::GgufBuilder;
using format::testing::kF32;
using format::testing::kI32;
using format::testing::le;
using format::testing::u32;
constexpr std::uint32_t kU16 = 2;  // gguf_metadata_value_type UINT16

struct Part {
  std::uint64_t no, count, total;
  unsigned tensors;
  bool split_keys = true;
};

// One part: its split.* keys and `tensors` F32[4] tensors, 32 bytes apart.
std::string part_bytes(const Part& p, unsigned first_tensor) {
  GgufBuilder b;
  if (p.split_keys) {
    b.kv("split.no", kU16, le(p.no, 2))
        .kv("split.count", kU16, le(p.count, 2))
        .kv("split.tensors.count", kI32, u32(static_cast<std::uint32_t>(p.total)));
  }
  for (unsigned t = 0; t < p.tensors; ++t) {
    b.tensor("blk." + std::to_string(first_tensor + t) + ".weight", {4}, kF32, t * 32ull);
  }
  return b.build(p.tensors * 32ull);
}

class GgufSplitTest : public ::testing::Test {
 protected:
  void write(const std::string& name, const std::string& bytes) {
    std::filesystem::create_directories(
        std::filesystem::path(root_.path() + "/" + name).parent_path());
    std::ofstream(root_.path() + "/" + name, std::ios::binary) << bytes;
  }
  // A consistent set of three parts holding 2, 3 and 1 tensors.
  void write_set(const std::string& prefix) {
    unsigned first = 0;
    const std::vector<unsigned> per_part = {2, 3, 1};
    for (unsigned i = 0; i < per_part.size(); ++i) {
      write(split_part_name(prefix, i + 1, 3), part_bytes({i, 3, 6, per_part[i]}, first));
      first += per_part[i];
    }
  }
  Result<SplitSet> set_of(const std::string& name) {
    auto names = NameResolver::open(root_.path());
    return gguf_split_set(*names, name);
  }
  testing::TempDir root_;
};

TEST(GgufSplitName, FollowsTheGgufSplitPattern) {
  auto n = parse_split_name("org/llama-q4-00002-of-00003.gguf");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->prefix, "org/llama-q4");
  EXPECT_EQ(n->no, 2u);
  EXPECT_EQ(n->count, 3u);
  EXPECT_EQ(split_part_name("org/llama-q4", 3, 3), "org/llama-q4-00003-of-00003.gguf");
  for (const char* not_split :
       {"m.gguf", "m-00001-of-00003.safetensors", "m-0001-of-00003.gguf", "m-00004-of-00003.gguf",
        "m-00000-of-00003.gguf", "-00001-of-00003.gguf", "m-00001-0f-00003.gguf"}) {
    EXPECT_FALSE(parse_split_name(not_split).has_value()) << not_split;
  }
}

TEST_F(GgufSplitTest, AnyPartNamesTheWholeSet) {
  write_set("m/model");
  for (unsigned i = 1; i <= 3; ++i) {
    auto set = set_of(split_part_name("m/model", i, 3));
    ASSERT_TRUE(set.ok()) << set.status().message();
    EXPECT_EQ(set->parts, (std::vector<std::string>{"m/model-00001-of-00003.gguf",
                                                    "m/model-00002-of-00003.gguf",
                                                    "m/model-00003-of-00003.gguf"}));
    EXPECT_EQ(set->tensors, 6u);
    EXPECT_GT(set->bytes, 6u * 16);
  }
}

TEST_F(GgufSplitTest, IncompleteOrInconsistentSetsAreRefusedWithTheReason) {
  struct Case {
    const char* what;
    Part second;  // replaces part 2 of 3
    bool remove_third;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"a missing part",
       {1, 3, 6, 3},
       true,
       "part 3 of 3 (s/model-00003-of-00003.gguf) is missing"},
      {"a wrong split.no", {0, 3, 6, 3}, false, "has split.no 0, not 1"},
      {"a wrong split.count", {1, 4, 6, 3}, false, "has split.count 4, the names say 3"},
      {"a disagreeing total", {1, 3, 7, 3}, false, "has split.tensors.count 7, the first part 6"},
      {"too few tensors",
       {1, 3, 6, 2},
       false,
       "its parts hold 5 tensors, split.tensors.count says 6"},
      {"no split keys", {1, 3, 6, 3, false}, false, "lacks split.no"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    write_set("s/model");
    write(split_part_name("s/model", 2, 3), part_bytes(c.second, 2));
    if (c.remove_third)
      std::filesystem::remove(root_.path() + "/" + split_part_name("s/model", 3, 3));
    auto set = set_of(split_part_name("s/model", 1, 3));
    ASSERT_FALSE(set.ok());
    EXPECT_EQ(set.status().code(), ErrorCode::kLoadFailed);
    EXPECT_NE(set.status().message().find(c.says), std::string::npos) << set.status().message();
  }
  write_set("t/model");
  write(split_part_name("t/model", 2, 3), "GGUF not really");
  EXPECT_NE(set_of(split_part_name("t/model", 3, 3)).status().message().find("is not valid GGUF"),
            std::string::npos);
  EXPECT_EQ(set_of("nothing-00001-of-00002.gguf").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(set_of("plain.gguf").status().code(), ErrorCode::kInvalidName);
}

}  // namespace
}  // namespace modelpool::broker
