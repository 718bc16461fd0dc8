// Bad input of every kind gets its documented error, and the broker keeps
// serving everyone else (after memcached's t/bogus-commands.t).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "broker_fixture.hpp"

namespace modelpool::testing {
namespace {

class BogusCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.write_random("good.bin", 1 << 20);
    outside_.write_random("secret.bin", 4096);
    std::filesystem::create_symlink(outside_.path() + "/secret.bin",
                                    models_.path() + "/escape.bin");
    std::filesystem::create_symlink("good.bin", models_.path() + "/alias.bin");
    broker_.start();
  }
  void TearDown() override {
    // Whatever happened, the broker still answers a well-behaved client.
    RawConn c(broker_.worker_socket());
    json r = c.request({{"op", "hello"}});
    EXPECT_TRUE(r["ok"].get<bool>());
  }
  std::string code_of(const json& r) { return r.value("error", json::object()).value("code", ""); }

  ScratchDir models_, outside_;
  Broker broker_{models_.path()};
};

TEST_F(BogusCommands, OversizedFrameIsRefusedAndClosed) {
  RawConn c(broker_.worker_socket());
  const std::uint32_t n = 64 * 1024 + 1;
  std::string hdr = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                     static_cast<char>((n >> 16) & 0xff), static_cast<char>(n >> 24)};
  c.send_raw(hdr);
  auto r = c.recv();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(code_of(*r), "bad_request");
  EXPECT_FALSE(c.recv().has_value()) << "connection should be closed";
}

TEST_F(BogusCommands, TruncatedFrameThenHangUp) {
  {
    RawConn c(broker_.worker_socket());
    c.send_raw(std::string("\x20\x00\x00\x00{\"op\":", 10));
  }
  json stats = broker_.admin("stats");
  EXPECT_TRUE(stats["ok"].get<bool>());
}

TEST_F(BogusCommands, NotJsonIsBadRequest) {
  RawConn c(broker_.worker_socket());
  c.send_frame("this is not json");
  auto r = c.recv();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(code_of(*r), "bad_request");
  // The connection stays usable after a bad request inside a good frame.
  EXPECT_TRUE(c.request({{"op", "hello"}})["ok"].get<bool>());
}

TEST_F(BogusCommands, JsonThatIsNotAnObject) {
  RawConn c(broker_.worker_socket());
  for (const char* doc : {"[1,2,3]", "42", "\"hello\"", "null"}) {
    c.send_frame(doc);
    auto r = c.recv();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(code_of(*r), "bad_request") << doc;
  }
}

TEST_F(BogusCommands, UnknownOpEchoesId) {
  RawConn c(broker_.worker_socket());
  json r = c.request({{"op", "frobnicate"}, {"id", "x-1"}});
  EXPECT_EQ(code_of(r), "unknown_op");
  EXPECT_EQ(r["id"], "x-1");
}

TEST_F(BogusCommands, FieldsOfTheWrongType) {
  RawConn c(broker_.worker_socket());
  EXPECT_EQ(code_of(c.request({{"op", "acquire"}, {"model", 12}})), "bad_request");
  EXPECT_EQ(code_of(c.request({{"op", "acquire"}})), "bad_request");
  EXPECT_EQ(code_of(c.request({{"op", "acquire"}, {"model", "good.bin"}, {"wait_ms", "soon"}})),
            "bad_request");
  EXPECT_EQ(code_of(c.request({{"op", "release"}, {"handle", "1"}})), "bad_request");
  EXPECT_EQ(code_of(c.request({{"op", 5}})), "bad_request");
}

TEST_F(BogusCommands, UnknownAndDoubleReleasedHandles) {
  RawConn c(broker_.worker_socket());
  EXPECT_EQ(code_of(c.request({{"op", "release"}, {"handle", 999999}})), "stale_handle");
  json a = c.request({{"op", "acquire"}, {"model", "good.bin"}});
  ASSERT_TRUE(a["ok"].get<bool>()) << a.dump();
  const auto h = a["handle"].get<std::uint64_t>();
  // Another connection cannot release it.
  RawConn other(broker_.worker_socket());
  EXPECT_EQ(code_of(other.request({{"op", "release"}, {"handle", h}})), "stale_handle");
  EXPECT_TRUE(c.request({{"op", "release"}, {"handle", h}})["ok"].get<bool>());
  EXPECT_EQ(code_of(c.request({{"op", "release"}, {"handle", h}})), "stale_handle");
}

// "reply": false: the broker answers neither the release nor its error, and
// the conversation stays in step.
TEST_F(BogusCommands, ReleaseWithoutReplySendsNothingEvenForAStaleHandle) {
  RawConn c(broker_.worker_socket());
  EXPECT_EQ(code_of(c.request({{"op", "release"}, {"handle", 1}, {"reply", "no"}})), "bad_request");
  json a = c.request({{"op", "acquire"}, {"id", 1}, {"model", "good.bin"}});
  ASSERT_TRUE(a["ok"].get<bool>()) << a.dump();
  const auto h = a["handle"].get<std::uint64_t>();
  c.send_frame(json({{"op", "release"}, {"id", 2}, {"handle", h}, {"reply", false}}).dump());
  c.send_frame(json({{"op", "release"}, {"id", 3}, {"handle", h}, {"reply", false}}).dump());
  c.send_frame(json({{"op", "release"}, {"id", 4}, {"handle", 999999}, {"reply", false}}).dump());
  json next = c.request({{"op", "hello"}, {"id", 5}});
  EXPECT_EQ(next["id"], 5) << next.dump();
  EXPECT_TRUE(next["ok"].get<bool>());
  json stats = broker_.admin("stats");
  EXPECT_EQ(stats["releases"], 1);
  EXPECT_EQ(stats["models"][0]["refs"], 0) << stats.dump();
}

TEST_F(BogusCommands, BadModelNames) {
  RawConn c(broker_.worker_socket());
  for (const char* name : {"../etc/passwd", "/etc/passwd", "a/../../x", "", "a//b", "./good.bin"}) {
    EXPECT_EQ(code_of(c.request({{"op", "acquire"}, {"model", name}})), "invalid_name") << name;
  }
  EXPECT_EQ(code_of(c.request({{"op", "acquire"}, {"model", std::string(300, 'a')}})),
            "invalid_name");
  EXPECT_EQ(code_of(c.request({{"op", "acquire"}, {"model", "missing.bin"}})), "not_found");
  EXPECT_EQ(code_of(c.request({{"op", "acquire"}, {"model", "escape.bin"}})), "forbidden");
  json alias = c.request({{"op", "acquire"}, {"model", "alias.bin"}});
  EXPECT_TRUE(alias["ok"].get<bool>()) << "a symlink inside the root is fine: " << alias.dump();
}

TEST_F(BogusCommands, AdminOpsOnTheWorkerSocketAreForbidden) {
  RawConn c(broker_.worker_socket());
  for (const char* op : {"stats", "list", "evict", "clear", "pin", "load", "config"}) {
    EXPECT_EQ(code_of(c.request({{"op", op}, {"model", "good.bin"}})), "forbidden") << op;
  }
}

TEST_F(BogusCommands, AdminErrors) {
  EXPECT_EQ(code_of(broker_.admin("evict", {{"model", "nothing.bin"}})), "not_found");
  EXPECT_EQ(code_of(broker_.admin("pin", {{"model", "nothing.bin"}})), "not_found");
  EXPECT_EQ(code_of(broker_.admin("load", {{"model", "../x"}})), "invalid_name");
  EXPECT_EQ(code_of(broker_.admin("evict", {})), "bad_request");
}

}  // namespace
}  // namespace modelpool::testing
