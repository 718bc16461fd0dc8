// File: tests/format/detect_test.cc
//
// Format detection from the first bytes, and parse() dispatching on it.
#include <gtest/gtest.h>

#include "tests/format/gguf_builder.hpp"

namespace modelpool::format::testing {
namespace {

TEST(Detect, ByMagicAndHeaderShape) {
  EXPECT_EQ(detect(bytes_of(GgufBuilder().head())), layout::Format::kGguf);
  EXPECT_EQ(detect(bytes_of(GgufBuilder(1).head())), layout::Format::kGguf);  // refused later
  EXPECT_EQ(detect(bytes_of(safetensors_file("{}"))), layout::Format::kSafetensors);
  EXPECT_EQ(detect(bytes_of(safetensors_file("{not json"))), layout::Format::kSafetensors);
}

TEST(Detect, EverythingElseIsRaw) {
  EXPECT_EQ(detect(bytes_of("")), layout::Format::kRaw);
  EXPECT_EQ(detect(bytes_of("GGU")), layout::Format::kRaw);
  EXPECT_EQ(detect(bytes_of(u64(2))), layout::Format::kRaw);  // nothing after the length
  EXPECT_EQ(detect(bytes_of(safetensors_file("[]"))), layout::Format::kRaw);  // not '{'
  EXPECT_EQ(detect(bytes_of(u64(1) + "{")), layout::Format::kRaw);            // too short for "{}"
  EXPECT_EQ(detect(bytes_of(u64(10) + "{}")), layout::Format::kRaw);  // longer than the file
  EXPECT_EQ(detect(bytes_of(u64((100ULL << 20) + 1) + "{" + std::string(64, ' '))),
            layout::Format::kRaw);
  EXPECT_EQ(detect(bytes_of(std::string("\x7f"
                                        "ELF\2\1\1\0\0\0\0\0",
                                        12))),
            layout::Format::kRaw);
}

TEST(Parse, RawFilesGiveAnEmptyIndex) {
  auto r = parse(bytes_of("just some bytes, no header"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->format, layout::Format::kRaw);
  EXPECT_TRUE(r->tensors.empty());
  EXPECT_TRUE(r->metadata.is_object());
}

TEST(Parse, DispatchesToTheReader) {
  auto st = parse(
      bytes_of(safetensors_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2)));
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  EXPECT_EQ(st->format, layout::Format::kSafetensors);
  ASSERT_NE(st->find("a"), nullptr);
  EXPECT_TRUE(fails_with(parse(bytes_of(GgufBuilder(1).head())), "version 1"));
  EXPECT_TRUE(fails_with(parse(bytes_of(safetensors_file("{nope}"))), "safetensors: header"));
}

}  // namespace
}  // namespace modelpool::format::testing
