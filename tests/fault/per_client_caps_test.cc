// File: tests/fault/per_client_caps_test.cc
//
// One connection cannot take the whole broker's bookkeeping: past
// --max-handles-per-client handles or --max-waiting-per-client acquires
// waiting for room it gets a typed error (pool_full naming the flag) that
// holds no reference, while other connections are served as before and the
// first acquires again once it is back under its cap. Real broker, real
// sockets.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "broker_fixture.hpp"
#include "fault_support.hpp"

namespace modelpool::fault {
namespace {

using testing::Broker;
using testing::ScratchDir;

class PerClientCaps : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.write_random("a.bin", 9 << 20, 1);
    models_.write_random("b.bin", 9 << 20, 2);
  }
  ScratchDir models_;
};

json stats(const Broker& b) {
  Conn ctl(b.admin_socket());
  auto s = ctl.request({{"op", "stats"}});
  return s ? *s : json();
}

TEST_F(PerClientCaps, HandlesPastTheCapAreATypedErrorWithoutAReference) {
  Broker b(models_.path(), {"--max-handles-per-client", "3"});
  b.start();
  Conn first(b.worker_socket());
  std::vector<std::uint64_t> held;
  for (int i = 0; i < 3; ++i) {
    auto r = first.request({{"op", "acquire"}, {"id", i}, {"model", "a.bin"}});
    ASSERT_TRUE(replied_ok(r)) << (r ? r->dump() : "no reply");
    held.push_back((*r)["handle"].get<std::uint64_t>());
  }
  auto r = first.request({{"op", "acquire"}, {"id", 3}, {"model", "a.bin"}});
  ASSERT_TRUE(r) << "the broker is gone";
  EXPECT_FALSE(replied_ok(r));
  EXPECT_EQ((*r)["id"], 3);
  EXPECT_EQ((*r)["error"]["code"], "pool_full") << r->dump();
  EXPECT_NE((*r)["error"]["message"].get<std::string>().find("--max-handles-per-client 3"),
            std::string::npos)
      << r->dump();
  json s = stats(b);
  EXPECT_EQ(s["handles"], 3);
  ASSERT_EQ(s["models"].size(), 1U);
  EXPECT_EQ(s["models"][0]["refs"], 3) << "the refused acquire holds no reference";

  Conn second(b.worker_socket());
  EXPECT_TRUE(replied_ok(second.request({{"op", "acquire"}, {"id", 1}, {"model", "a.bin"}})))
      << "the cap is per connection";
  EXPECT_TRUE(replied_ok(first.request({{"op", "release"}, {"handle", held.back()}})));
  r = first.request({{"op", "acquire"}, {"id", 4}, {"model", "a.bin"}});
  EXPECT_TRUE(replied_ok(r)) << (r ? r->dump() : "no reply");
  EXPECT_EQ(stats(b)["handles"], 4);
}

TEST_F(PerClientCaps, WaitsPastTheCapAreATypedError) {
  Broker b(models_.path(), {"--memory", "16MiB", "--max-waiting-per-client", "3"});
  b.start();
  Conn holder(b.worker_socket());
  auto a = holder.request({{"op", "acquire"}, {"model", "a.bin"}});
  ASSERT_TRUE(replied_ok(a));
  Conn waiter(b.worker_socket());
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(
        waiter.send({{"op", "acquire"}, {"id", i}, {"model", "b.bin"}, {"wait_ms", 600000}}));
  }
  auto r = waiter.recv();  // the 4th is answered at once, the 3 others wait
  ASSERT_TRUE(r) << "the broker is gone";
  EXPECT_EQ((*r)["id"], 4) << r->dump();
  EXPECT_EQ((*r)["error"]["code"], "pool_full") << r->dump();
  EXPECT_NE((*r)["error"]["message"].get<std::string>().find("--max-waiting-per-client 3"),
            std::string::npos)
      << r->dump();
  EXPECT_EQ(stats(b)["waiting_for_room"], 3);

  Conn other(b.worker_socket());  // another connection may still wait
  ASSERT_TRUE(other.send({{"op", "acquire"}, {"id", 9}, {"model", "b.bin"}, {"wait_ms", 600000}}));
  bool waiting = false;
  for (int i = 0; i < 100000 && !waiting; ++i) {
    json s = stats(b);
    ASSERT_FALSE(s.is_null()) << "the broker is gone";
    waiting = s["waiting_for_room"] == 4;
    if (!waiting && other.peer_gone()) break;
  }
  ASSERT_TRUE(waiting) << "the other connection's acquire waits";

  ASSERT_TRUE(replied_ok(holder.request({{"op", "release"}, {"handle", (*a)["handle"]}})));
  for (int i = 1; i <= 3; ++i) {
    r = waiter.recv();
    ASSERT_TRUE(replied_ok(r)) << (r ? r->dump() : "no reply");
    EXPECT_EQ((*r)["id"], i);
  }
  r = other.recv();
  ASSERT_TRUE(replied_ok(r)) << (r ? r->dump() : "no reply");
  EXPECT_EQ(stats(b)["waiting_for_room"], 0);
  r = waiter.request({{"op", "acquire"}, {"id", 5}, {"model", "b.bin"}, {"wait_ms", 600000}});
  EXPECT_TRUE(replied_ok(r)) << "under its cap again: " << (r ? r->dump() : "no reply");
}

}  // namespace
}  // namespace modelpool::fault
