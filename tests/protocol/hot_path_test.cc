// The DOM-free codec of the acquire/release round trip (hot_path.hpp) against
// the reference codec (messages.hpp): what one writes the other reads, and
// both judge every reply alike.
#include "shm/protocol/hot_path.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/protocol/reply_compare.hpp"

namespace modelpool::proto {
namespace {

TEST(HotPath, RequestsDecodeWithTheReferenceCodec) {
  auto r = decode_request(encode_acquire_request(7, AcquireRequest{"org/m.bin", 50}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->op, "acquire");
  EXPECT_EQ(r->id, 7);
  auto a = decode_acquire_request(r->body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->model, "org/m.bin");
  EXPECT_EQ(a->wait_ms, 50U);

  const std::string odd = "quote\" back\\slash \n tab\t \xc3\xa9";
  r = decode_request(encode_acquire_request(8, AcquireRequest{odd, std::nullopt}));
  ASSERT_TRUE(r.ok());
  a = decode_acquire_request(r->body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->model, odd);
  EXPECT_FALSE(a->wait_ms.has_value());

  r = decode_request(encode_release_request(UINT64_MAX, ReleaseRequest{UINT64_MAX - 1}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->op, "release");
  EXPECT_EQ(r->id, UINT64_MAX);
  auto rel = decode_release_request(r->body);
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->handle, UINT64_MAX - 1);
}

// What the broker's hot path accepts, the reference codec decodes to the
// same request; everything else is left to the reference codec.
void expect_hot_matches_reference(const std::string& p) {
  SCOPED_TRACE(p);
  auto hot = parse_hot_request(p);
  if (!hot) return;
  auto ref = decode_request(p);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  EXPECT_EQ(ref->id, hot->id ? json(*hot->id) : json(nullptr));
  if (hot->op == HotRequest::Op::kAcquire) {
    EXPECT_EQ(ref->op, "acquire");
    auto a = decode_acquire_request(ref->body);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->model, hot->acquire.model);
    EXPECT_EQ(a->wait_ms, hot->acquire.wait_ms);
  } else {
    EXPECT_EQ(ref->op, "release");
    auto r = decode_release_request(ref->body);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->handle, hot->release.handle);
    EXPECT_EQ(r->reply, hot->release.reply);
  }
}

TEST(HotPath, BrokerReadsWhatClientsSendWithoutADom) {
  auto a = parse_hot_request(encode_acquire_request(7, AcquireRequest{"org/m.bin", 50}));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->op, HotRequest::Op::kAcquire);
  EXPECT_EQ(a->id, 7U);
  EXPECT_EQ(a->acquire.model, "org/m.bin");
  EXPECT_EQ(a->acquire.wait_ms, 50U);
  const std::string odd = "quote\" back\\slash \n tab\t \xc3\xa9";
  a = parse_hot_request(encode_acquire_request(8, AcquireRequest{odd, std::nullopt}));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->acquire.model, odd);
  EXPECT_FALSE(a->acquire.wait_ms.has_value());
  auto r = parse_hot_request(encode_release_request(UINT64_MAX, ReleaseRequest{UINT64_MAX - 1}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->op, HotRequest::Op::kRelease);
  EXPECT_EQ(r->id, UINT64_MAX);
  EXPECT_EQ(r->release.handle, UINT64_MAX - 1);
  EXPECT_TRUE(r->release.reply);
  r = parse_hot_request(encode_release_request(1, ReleaseRequest{3, false}));
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->release.reply);
  r = parse_hot_request(R"({"op":"release","handle":3})");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->id.has_value());
}

TEST(HotPath, BrokerLeavesEverythingElseToTheReferenceCodec) {
  const std::string deep =
      R"({"op":"release","handle":1,"x":)" + std::string(64, '[') + std::string(64, ']') + "}";
  const std::vector<std::string> refused = {
      "",
      "not json",
      "[1,2]",
      R"({"op":"acquire","model":"m"} trailing)",
      R"({"op":"hello","id":1})",
      R"({"op":"stats","id":1})",
      R"({"op":7,"model":"m"})",
      R"({"model":"m"})",
      R"({"op":"acquire","id":-1,"model":"m"})",
      R"({"op":"acquire","id":"x","model":"m"})",
      R"({"op":"acquire","id":1.5,"model":"m"})",
      R"({"op":"acquire","id":{"a":1},"model":"m"})",
      R"({"op":"acquire","id":null,"model":"m"})",
      R"({"op":"acquire","id":1})",
      R"({"op":"acquire","id":1,"model":null})",
      R"({"op":"acquire","id":1,"model":["m"]})",
      R"({"op":"acquire","id":1,"model":"m","wait_ms":-5})",
      R"({"op":"acquire","id":1,"model":"m","wait_ms":null})",
      R"({"op":"acquire","id":1,"model":"m","wait_ms":"5"})",
      "{\"op\":\"acquire\",\"id\":1,\"model\":\"bad \xff\"}",
      R"({"op":"release","id":1})",
      R"({"op":"release","id":1,"handle":"1"})",
      R"({"op":"release","id":1,"handle":1,"reply":0})",
      R"({"op":"release","id":1,"handle":1,"reply":null})",
      R"({"op":"acquire","op":"stats","id":1,"model":"m"})",
      deep,
  };
  for (const std::string& p : refused) {
    EXPECT_FALSE(parse_hot_request(p).has_value()) << p;
    expect_hot_matches_reference(p);
  }
  const std::vector<std::string> accepted = {
      R"({"op":"acquire","model":"m"})",
      R"({"op":"acquire","id":1,"model":"x","model":"m","extra":{"a":[1,2]}})",
      R"({"op":"stats","op":"acquire","id":1,"model":"m"})",
      R"({"op":"release","id":1,"handle":5,"handle":6,"reply":false})",
      R"( {"id":2,"handle":9,"op":"release"} )",
      // The other op's fields, of any type, are ignored, wherever "op" is.
      R"({"handle":"x","reply":7,"op":"acquire","id":1,"model":"m"})",
      R"({"op":"release","id":3,"handle":5,"model":7,"wait_ms":true})",
      // A known key twice, within the plain subset: the last one wins.
      R"({"op":"acquire","id":1,"model":"x","model":"m","wait_ms":1,"wait_ms":2})",
      R"({"op":"release","handle":1,"x":)" + std::string(63, '[') + std::string(63, ']') + "}",
  };
  for (const std::string& p : accepted) {
    EXPECT_TRUE(parse_hot_request(p).has_value()) << p;
    expect_hot_matches_reference(p);
  }
}

TEST(HotPath, InvalidUtf8InARequestThrowsLikeTheReferenceCodec) {
  EXPECT_THROW((void)encode_acquire_request(1, AcquireRequest{"bad \xff", std::nullopt}),
               json::type_error);
}

TEST(HotPath, AcquireReplyRoundTrip) {
  const AcquireReply m{
      42, "a/b.safetensors", 2 << 21, 12345, 3, 0xdeadbeefcafef00dULL, "safetensors", true, {}, {}};
  for (const json& id : {json(9U), json("text id"), json(nullptr), json::array({1, 2})}) {
    const std::string payload = encode_acquire_reply(id, m);
    auto dom = decode_reply(payload);
    ASSERT_TRUE(dom.ok()) << payload;
    EXPECT_EQ(dom->id, id);
    auto ref = decode_acquire_reply(dom->body);
    ASSERT_TRUE(ref.ok());
    auto flat = parse_flat_reply(payload);
    ASSERT_TRUE(flat.ok()) << payload;
    EXPECT_TRUE(flat_reply_status(*flat).ok());
    EXPECT_EQ(flat->id.has_value(), id.is_number_unsigned());
    auto fast = acquire_reply_from(*flat);
    ASSERT_TRUE(fast.ok()) << fast.status().message();
    expect_same_reply(*ref, m);
    expect_same_reply(*fast, m);
  }
  // A name the broker cannot encode as UTF-8 is replaced, as encode_ok does.
  AcquireReply bad = m;
  bad.model = "x\xffy";
  auto flat = parse_flat_reply(encode_acquire_reply(1, bad));
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(acquire_reply_from(*flat)->model, "x\xef\xbf\xbdy");
}

TEST(HotPath, EmptyOkReply) {
  auto dom = decode_reply(encode_ok_empty(5));
  ASSERT_TRUE(dom.ok());
  EXPECT_EQ(dom->id, 5);
  EXPECT_EQ(encode_ok_empty(5), encode_ok(5, json::object()));
  auto flat = parse_flat_reply(encode_ok_empty(5));
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->id, 5U);
  EXPECT_TRUE(flat_reply_status(*flat).ok());
}

// The scanner of flat objects reads exactly what nlohmann's parser reads,
// and leaves what it does not cover to it.
TEST(HotPath, FlatScannerAgreesWithTheReferenceParser) {
  const std::vector<std::string> payloads = {
      R"({})",
      R"( { } )",
      "\t{\"id\" :\r\n7 , \"ok\":true}\n",
      R"({"id":0,"ok":false,"x":null})",
      R"({"id":18446744073709551615,"ok":true})",
      R"({"id":18446744073709551616,"ok":true})",
      R"({"id":00,"ok":true})",
      R"({"id":01,"ok":true})",
      R"({"id":-1,"ok":true})",
      R"({"id":1.0,"ok":true})",
      R"({"id":1e3,"ok":true})",
      R"({"id":1E3,"ok":true})",
      R"({"id":1,"ok":tru})",
      R"({"id":1,"ok":truex})",
      R"({"id":1,"ok":nul})",
      R"({"id":1,"ok":true,})",
      R"({"id":1,,"ok":true})",
      R"({"id":1 "ok":true})",
      R"({"id":1,"ok":true}})",
      R"({"id":1,"ok":true} x)",
      R"({"id":1,"ok":true)",
      R"({"id":1,"ok")",
      R"({"id)",
      R"({"a\"b":1})",
      R"({"a":"\u0041"})",
      "{\"a\":\"\x7f\"}",
      "{\"a\":\"tab\there\"}",
      "{\"a\":\"caf\xc3\xa9\"}",
      "{\"a\":\"bad \xff\"}",
      "\xef\xbb\xbf{\"id\":1,\"ok\":true}",
      R"({"id":1,"ok":true,"id":2,"ok":false})",
      R"({"ok":false,"error":"x","error":{"code":"not_found","message":"m"}})",
      R"({"id":1,"ok":true,"handle":2,"model":"org/m.bin","offset":2097152,"size":10,)"
      R"("generation":1,"checksum":"00000000deadbeef","format":"raw","cached":false})",
      R"([1])",
      R"("s")",
      R"(7)",
      "{\"a\":1}\x00",
  };
  for (const std::string& p : payloads) {
    SCOPED_TRACE(p);
    auto flat = parse_flat_reply(p);
    auto reference = parse_flat_reply_reference(p);
    ASSERT_EQ(flat.ok(), reference.ok());
    if (flat.ok()) {
      EXPECT_TRUE(*flat == *reference);
    } else {
      EXPECT_EQ(flat.status().message(), reference.status().message());
    }
  }
}

// Every payload gets the same verdict from both codecs.
TEST(HotPath, FlatAndReferenceDecodersAgree) {
  const std::string deep = std::string(65, '[') + std::string(65, ']');
  const std::string deep_ok =
      "{\"id\":1,\"ok\":true,\"x\":" + std::string(63, '[') + std::string(63, ']') + "}";
  const std::string too_deep =
      "{\"id\":1,\"ok\":true,\"x\":" + std::string(64, '[') + std::string(64, ']') + "}";
  const std::vector<std::string> payloads = {
      "",
      "not json",
      "[1,2]",
      "42",
      "\"ok\"",
      "{}",
      deep,
      deep_ok,
      too_deep,
      R"({"id":1})",
      R"({"id":1,"ok":"yes"})",
      R"({"id":1,"ok":true} trailing)",
      R"({"id":1,"ok":true,"ok":false,"error":{"code":"not_found","message":"m"}})",
      R"({"id":1,"ok":false})",
      R"({"id":1,"ok":false,"error":"not_found"})",
      R"({"id":1,"ok":false,"error":{"code":7}})",
      R"({"id":1,"ok":false,"error":{"code":"no_such_code","message":"m"}})",
      R"({"id":1,"ok":false,"error":{"code":"ok","message":"m"}})",
      R"({"id":1,"ok":false,"error":{"code":"pool_full","message":"full","x":{"code":"y"}}})",
      R"({"id":1,"ok":false,"error":{"code":"pool_full"},"error":{"message":"no code"}})",
      R"({"id":1,"ok":false,"error":{"code":"pool_full"},"error":[1]})",
      R"({"id":1,"ok":true,"handle":1,"model":"m","offset":0,"size":1,"generation":1,)"
      R"("checksum":"00000000000000ff","format":"raw"})",
      R"({"id":1,"ok":true,"handle":-1,"model":"m","offset":0,"size":1,"generation":1,)"
      R"("checksum":"00000000000000ff","format":"raw","cached":true})",
      R"({"id":1,"ok":true,"handle":1.0,"model":"m","offset":0,"size":1,"generation":1,)"
      R"("checksum":"00000000000000ff","format":"raw"})",
      R"({"id":1,"ok":true,"handle":1,"model":["m"],"offset":0,"size":1,"generation":1,)"
      R"("checksum":"00000000000000ff","format":"raw"})",
      R"({"id":1,"ok":true,"handle":1,"model":"m","offset":0,"size":1,"generation":1,)"
      R"("checksum":"ff","format":"raw","cached":"yes"})",
      R"({"id":1,"ok":true,"handle":1,"model":"m","offset":0,"size":1,"generation":1,)"
      R"("checksum":"00000000000000ff","format":"raw","size":2})",
  };
  for (const std::string& p : payloads) {
    SCOPED_TRACE(p);
    auto dom = decode_reply(p);
    auto flat = parse_flat_reply(p);
    auto reference = parse_flat_reply_reference(p);
    EXPECT_EQ(flat.ok(), reference.ok());
    if (flat.ok() && reference.ok()) {
      EXPECT_TRUE(*flat == *reference);
    }
    const Status flat_status = flat.ok() ? flat_reply_status(*flat) : flat.status();
    EXPECT_EQ(dom.ok(), flat_status.ok());
    EXPECT_EQ(dom.status().code(), flat_status.code());
    if (!dom.ok()) continue;
    auto ref = decode_acquire_reply(dom->body);
    auto fast = acquire_reply_from(*flat);
    EXPECT_EQ(ref.ok(), fast.ok());
    if (ref.ok() && fast.ok()) {
      EXPECT_EQ(ref->size, fast->size);
      EXPECT_EQ(ref->checksum, fast->checksum);
      EXPECT_EQ(ref->cached, fast->cached);
    }
  }
}

}  // namespace
}  // namespace modelpool::proto
