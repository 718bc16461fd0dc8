// Encode/decode round trips of every protocol v1 message, without a server.
#include "shm/protocol/messages.hpp"

#include <gtest/gtest.h>

namespace modelpool::proto {
namespace {

TEST(Messages, RequestEnvelope) {
  auto r = decode_request(encode_request("acquire", 7, to_json(AcquireRequest{"org/m.bin", 50})));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->op, "acquire");
  EXPECT_EQ(r->id, 7);
  auto a = decode_acquire_request(r->body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->model, "org/m.bin");
  EXPECT_EQ(a->wait_ms, 50U);
}

TEST(Messages, BadEnvelopes) {
  for (const char* bad : {"not json", "[1,2]", "42", "\"op\"", "{}", R"({"op":3})", "{\"op\":"}) {
    auto r = decode_request(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest) << bad;
  }
}

TEST(Messages, WrongFieldTypesAreBadRequest) {
  auto r = decode_request(R"({"op":"acquire","model":5})");
  ASSERT_TRUE(r.ok());
  auto a = decode_acquire_request(r->body);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), ErrorCode::kBadRequest);
  EXPECT_NE(a.status().message().find("model"), std::string::npos);

  auto w = decode_acquire_request(json{{"model", "x"}, {"wait_ms", -1}});
  EXPECT_EQ(w.status().code(), ErrorCode::kBadRequest);
  auto h = decode_release_request(json{{"handle", "1"}});
  EXPECT_EQ(h.status().code(), ErrorCode::kBadRequest);
}

TEST(Messages, AcquireReplyRoundTrip) {
  AcquireReply m{
      42, "a/b.safetensors", 2 << 21, 12345, 3, 0xdeadbeefcafef00dULL, "safetensors", true, {}, {}};
  auto reply = decode_reply(encode_ok(9, to_json(m)));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->id, 9);
  auto d = decode_acquire_reply(reply->body);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->handle, 42U);
  EXPECT_EQ(d->model, m.model);
  EXPECT_EQ(d->offset, m.offset);
  EXPECT_EQ(d->size, m.size);
  EXPECT_EQ(d->generation, 3U);
  EXPECT_EQ(d->checksum, m.checksum);
  EXPECT_EQ(d->format, "safetensors");
  EXPECT_TRUE(d->cached);
  EXPECT_EQ(reply->body["checksum"], "deadbeefcafef00d");
}

TEST(Messages, HelloReplyRoundTrip) {
  HelloReply h{1, "pool", "/dev/shm/pool", 1ULL << 40, 4096};
  auto reply = decode_reply(encode_ok(nullptr, to_json(h)));
  ASSERT_TRUE(reply.ok());
  auto d = decode_hello_reply(reply->body);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->pool, "pool");
  EXPECT_EQ(d->segment_path, "/dev/shm/pool");
  EXPECT_EQ(d->segment_size, 1ULL << 40);
}

TEST(Messages, ErrorReplyCarriesCodeAndMessage) {
  auto reply = decode_reply(encode_error(1, error(ErrorCode::kPoolFull, "no room")));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), ErrorCode::kPoolFull);
  EXPECT_EQ(reply.status().message(), "no room");
}

TEST(Messages, MalformedRepliesAreProtocolErrors) {
  for (const char* bad :
       {"{}", "nope", R"({"ok":false})", R"({"ok":false,"error":{"code":"zzz"}})"}) {
    auto r = decode_reply(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kProtocol) << bad;
  }
}

TEST(Messages, EveryErrorCodeRoundTrips) {
  for (int i = 1; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    auto c = static_cast<ErrorCode>(i);
    EXPECT_EQ(error_code_from_string(to_string(c)), c);
  }
}

TEST(Messages, ChecksumHex) {
  EXPECT_EQ(checksum_to_hex(1), "0000000000000001");
  EXPECT_EQ(checksum_to_hex(0x0123456789abcdefULL), "0123456789abcdef");
  EXPECT_EQ(checksum_to_hex(~0ULL), "ffffffffffffffff");
  for (std::uint64_t v : {0ULL, 0xfedcba9876543210ULL, 0x8000000000000001ULL}) {
    EXPECT_EQ(checksum_from_hex(checksum_to_hex(v)), v);
  }
  std::string out = "x";
  append_checksum_hex(out, 0xabcULL);
  EXPECT_EQ(out, "x0000000000000abc");
  EXPECT_EQ(checksum_from_hex("ffffffffffffffff"), ~0ULL);
  EXPECT_FALSE(checksum_from_hex("xyz").has_value());
  EXPECT_FALSE(checksum_from_hex("00000000000000001").has_value());
}

TEST(Messages, InvalidUtf8InMessagesIsReplaced) {
  std::string s = encode_error(1, error(ErrorCode::kNotFound, std::string("bad \xff name")));
  EXPECT_TRUE(decode_reply(s).status().code() == ErrorCode::kNotFound);
}

}  // namespace
}  // namespace modelpool::proto

namespace modelpool::proto {
namespace {

// Regression: 32,000 nested arrays inside a 64 KiB frame overflowed the stack.
TEST(Messages, DeeplyNestedJsonIsRefusedWithoutRecursing) {
  const int n = 32000;
  std::string doc = "{\"op\":\"hello\",\"id\":" + std::string(n, '[') + std::string(n, ']') + "}";
  auto r = decode_request(doc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(decode_reply(doc).status().code(), ErrorCode::kProtocol);
  // Brackets inside strings do not count.
  auto ok = decode_request("{\"op\":\"hello\",\"id\":\"" + std::string(200, '[') + "\"}");
  EXPECT_TRUE(ok.ok());
}

}  // namespace
}  // namespace modelpool::proto
