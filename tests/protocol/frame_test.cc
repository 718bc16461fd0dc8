// Round trips and bad input for the length-prefixed frame codec.
#include "shm/protocol/frame.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace modelpool::proto {
namespace {

TEST(Frame, RoundTripAcrossArbitraryChunking) {
  std::string wire =
      encode_frame(R"({"op":"hello"})") + encode_frame(R"({"op":"acquire","model":"a"})");
  for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    FrameDecoder d;
    std::vector<std::string> got;
    for (std::size_t i = 0; i < wire.size(); i += chunk) {
      d.feed(wire.data() + i, std::min(chunk, wire.size() - i));
      for (;;) {
        auto f = d.next();
        ASSERT_TRUE(f.ok());
        if (!f->has_value()) break;
        got.push_back(**f);
      }
    }
    ASSERT_EQ(got.size(), 2U) << "chunk " << chunk;
    EXPECT_EQ(got[0], R"({"op":"hello"})");
    EXPECT_EQ(got[1], R"({"op":"acquire","model":"a"})");
    EXPECT_EQ(d.buffered(), 0U);
  }
}

// next_view() returns the same payloads as next(), without copies: each view
// holds until the next feed(), and the buffer is reclaimed there.
TEST(Frame, ViewsMatchCopiesAcrossArbitraryChunking) {
  std::string wire;
  for (int i = 0; i < 40; ++i) wire += encode_frame("frame " + std::string(i, 'x'));
  std::string appended;
  append_frame(appended, "frame ");
  EXPECT_EQ(appended, encode_frame("frame "));
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{64}, wire.size()}) {
    FrameDecoder d;
    int seen = 0;
    for (std::size_t i = 0; i < wire.size(); i += chunk) {
      d.feed(wire.data() + i, std::min(chunk, wire.size() - i));
      std::vector<std::string_view> views;  // all from this feed, all still valid
      for (;;) {
        auto f = d.next_view();
        ASSERT_TRUE(f.ok());
        if (!f->has_value()) break;
        views.push_back(**f);
      }
      for (std::string_view v : views) {
        EXPECT_EQ(v, "frame " + std::string(seen, 'x')) << "chunk " << chunk;
        ++seen;
      }
    }
    EXPECT_EQ(seen, 40) << "chunk " << chunk;
    EXPECT_EQ(d.buffered(), 0U);
  }
  FrameDecoder d;
  d.feed("\0\0\0\0", 4);
  EXPECT_EQ(d.next_view().status().code(), ErrorCode::kBadRequest);
}

TEST(Frame, LengthIsLittleEndian) {
  std::string f = encode_frame(std::string(0x0102, 'x'));
  EXPECT_EQ(static_cast<unsigned char>(f[0]), 0x02);
  EXPECT_EQ(static_cast<unsigned char>(f[1]), 0x01);
  EXPECT_EQ(f[2], 0);
  EXPECT_EQ(f[3], 0);
}

TEST(Frame, OversizedFrameIsBadRequestBeforeItsBodyArrives) {
  FrameDecoder d;
  const std::uint32_t n = kMaxFrame + 1;
  char hdr[4] = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                 static_cast<char>((n >> 16) & 0xff), static_cast<char>(n >> 24)};
  d.feed(hdr, 4);
  auto f = d.next();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), ErrorCode::kBadRequest);
}

TEST(Frame, MaxSizedFrameIsAccepted) {
  FrameDecoder d;
  std::string wire = encode_frame(std::string(kMaxFrame, ' '));
  d.feed(wire.data(), wire.size());
  auto f = d.next();
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->size(), kMaxFrame);
}

TEST(Frame, EmptyFrameIsBadRequest) {
  FrameDecoder d;
  d.feed("\0\0\0\0", 4);
  EXPECT_EQ(d.next().status().code(), ErrorCode::kBadRequest);
}

TEST(Frame, TruncatedFrameWaitsForMore) {
  FrameDecoder d;
  std::string wire = encode_frame(R"({"op":"hello"})");
  d.feed(wire.data(), wire.size() - 1);
  auto f = d.next();
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
}

}  // namespace
}  // namespace modelpool::proto
