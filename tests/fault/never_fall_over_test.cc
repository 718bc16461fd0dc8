// File: tests/fault/never_fall_over_test.cc
//
// Numbers and strings a client chooses cannot take the broker down or lie
// in its log: `list` with an offset + limit that overflow, a wait_ms of
// 2^64-1, an acquire whose reply is too large to frame (it must take no
// reference), and an op with a newline that would forge a log line. Each
// runs against the real broker.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "broker_fixture.hpp"
#include "fault_support.hpp"

namespace modelpool::fault {
namespace {

using testing::Broker;
using testing::ScratchDir;
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

class NeverFallOver : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.write_random("a.bin", 9 << 20, 1);
    models_.write_random("b.bin", 9 << 20, 2);
  }
  ScratchDir models_;
  ScratchDir logs_;
};

TEST_F(NeverFallOver, ListWithOverflowingOffsetAndLimit) {
  Broker b(models_.path());
  b.start();
  Conn ctl(b.admin_socket());
  ASSERT_TRUE(replied_ok(ctl.request({{"op", "load"}, {"model", "a.bin"}})));
  ASSERT_TRUE(replied_ok(ctl.request({{"op", "load"}, {"model", "b.bin"}})));
  auto r = ctl.request({{"op", "list"}, {"offset", 1}, {"limit", kMax}});
  ASSERT_TRUE(replied_ok(r)) << (r ? r->dump() : "the broker is gone");
  EXPECT_EQ((*r)["models"].size(), 1U);
  EXPECT_EQ((*r)["total"], 2);
  r = ctl.request({{"op", "list"}, {"offset", kMax}, {"limit", kMax}});
  ASSERT_TRUE(replied_ok(r)) << (r ? r->dump() : "the broker is gone");
  EXPECT_TRUE((*r)["models"].empty());
  r = ctl.request({{"op", "list"}, {"offset", 0}, {"limit", kMax - 1}});
  ASSERT_TRUE(replied_ok(r));
  EXPECT_EQ((*r)["models"].size(), 2U);
  EXPECT_TRUE(replied_ok(ctl.request({{"op", "health"}})));
}

// wait_ms = 2^64-1 waits (clamped to a day), it does not overflow into an
// instant timeout: releasing the model that fills the pool serves it.
TEST_F(NeverFallOver, HugeWaitMsWaitsForRoom) {
  Broker b(models_.path(), {"--memory", "16MiB"});
  b.start();
  Conn holder(b.worker_socket());
  auto a = holder.request({{"op", "acquire"}, {"model", "a.bin"}});
  ASSERT_TRUE(replied_ok(a));
  Conn waiter(b.worker_socket());
  ASSERT_TRUE(waiter.send({{"op", "acquire"}, {"id", 7}, {"model", "b.bin"}, {"wait_ms", kMax}}));
  Conn ctl(b.admin_socket());
  bool waiting = false;
  for (int i = 0; i < 100000 && !waiting; ++i) {
    auto s = ctl.request({{"op", "stats"}});
    ASSERT_TRUE(s) << "the broker is gone";
    waiting = (*s)["waiting_for_room"] == 1;
    if (!waiting && waiter.peer_gone()) break;
  }
  ASSERT_TRUE(waiting) << "the acquire did not wait: " << waiter.recv()->dump();
  ASSERT_TRUE(replied_ok(holder.request({{"op", "release"}, {"handle", (*a)["handle"]}})));
  auto r = waiter.recv();
  ASSERT_TRUE(replied_ok(r)) << (r ? r->dump() : "no reply");
  EXPECT_EQ((*r)["id"], 7);
}

// An acquire whose reply would not fit in a frame (its id echoed back is
// 65,400 bytes) is refused and holds nothing: refs 0, evictable.
TEST_F(NeverFallOver, AcquireWhoseReplyCannotBeSentTakesNoReference) {
  Broker b(models_.path());
  b.start();
  Conn w(b.worker_socket());
  auto r = w.request({{"op", "acquire"}, {"id", std::string(65400, 'x')}, {"model", "a.bin"}});
  ASSERT_TRUE(r) << "no reply";
  EXPECT_FALSE(replied_ok(r));
  EXPECT_EQ((*r)["error"]["code"], "bad_request") << r->dump();
  Conn ctl(b.admin_socket());
  auto s = ctl.request({{"op", "stats"}});
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["handles"], 0);
  ASSERT_EQ((*s)["models"].size(), 1U);
  EXPECT_EQ((*s)["models"][0]["refs"], 0);
  EXPECT_TRUE(replied_ok(ctl.request({{"op", "evict"}, {"model", "a.bin"}})));
  auto ok = w.request({{"op", "acquire"}, {"id", 1}, {"model", "a.bin"}});
  EXPECT_TRUE(replied_ok(ok)) << "the connection still works";
}

// An op with a newline and a fake log line in it is logged as one line,
// escaped; a long op is cut.
TEST_F(NeverFallOver, ClientStringsCannotForgeLogLines) {
  const std::string log = logs_.path() + "/broker.log";
  Broker b(models_.path(), {"--log-file", log});
  b.start();
  Conn w(b.worker_socket());
  const std::string forged = "2026-01-01T00:00:00.000 error FORGED line";
  auto r = w.request({{"op", "nope\n" + forged}});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["error"]["code"], "unknown_op");
  r = w.request({{"op", "stats\r\n" + forged}, {"model", std::string(5000, 'm')}});
  ASSERT_TRUE(r);
  r = w.request({{"op", std::string(5000, 'L')}});
  ASSERT_TRUE(r);
  Conn ctl(b.admin_socket());
  ASSERT_TRUE(replied_ok(ctl.request({{"op", "health"}})));  // the warnings are written
  b.stop();
  std::istringstream in(testing::read_file(log));
  int forged_lines = 0, long_lines = 0;
  for (std::string line; std::getline(in, line);) {
    EXPECT_NE(line.rfind(forged, 0), 0U) << "a forged line: " << line;
    if (line.find("FORGED") != std::string::npos) ++forged_lines;
    EXPECT_EQ(line.find('\r'), std::string::npos) << line;
    if (line.find("LLLL") != std::string::npos) {
      ++long_lines;
      EXPECT_LT(line.size(), 400U) << "a client string is cut";
      EXPECT_NE(line.find("bytes]"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(forged_lines, 2) << "each request makes exactly one line";
  EXPECT_EQ(long_lines, 1);
}

// Connections past the broker's descriptor limit (lowered on the running
// broker with prlimit) make accept fail with EMFILE: the broker backs off
// instead of spinning, logs it a few times at most, and serves a new
// worker once descriptors are free again.
TEST_F(NeverFallOver, DescriptorExhaustionBacksOffInsteadOfSpinning) {
  const std::string log = logs_.path() + "/broker.log";
  Broker b(models_.path(), {"--log-file", log});
  b.start();
  Conn ctl(b.admin_socket());
  const rlimit low{64, 64};
  ASSERT_EQ(::prlimit(b.pid(), RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);
  std::vector<std::unique_ptr<Conn>> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<Conn>(b.worker_socket()));
  ASSERT_TRUE(replied_ok(ctl.request({{"op", "health"}})));  // the loop is past the burst
  EXPECT_FALSE(spins(cpu_ticks_over_one_second(b.pid(), "with accepts failing")));
  idle.clear();  // descriptors come back as the broker accepts and closes them
  bool served = false;
  for (int i = 0; i < 200 && !served; ++i) {
    served =
        replied_ok(Conn(b.worker_socket()).request({{"op", "hello"}}, std::chrono::seconds(5)));
  }
  EXPECT_TRUE(served) << "a new worker is served once descriptors are free";
  ASSERT_TRUE(replied_ok(ctl.request({{"op", "health"}})));
  b.stop();
  const int lines = count_lines_with(log, "accept failed");
  EXPECT_GE(lines, 1);
  EXPECT_LE(lines, 5) << "accept failures are reported once per interval";
}

// Under a descriptor limit of 300 the broker lowers --max-clients 4096 to
// what fits, says so in its log, and shows the effective value in `config`.
TEST_F(NeverFallOver, MaxClientsFitsTheDescriptorLimit) {
  const std::string log = logs_.path() + "/broker.log";
  Broker b(models_.path(), {"--log-file", log, "--max-clients", "4096"});
  std::vector<std::string> argv = {"/bin/sh", "-c", "ulimit -n 300 && exec \"$@\"", "sh"};
  for (const auto& a : b.argv()) argv.push_back(a);
  testing::Child broker(argv);
  auto ready = broker.read_line();
  ASSERT_TRUE(ready && ready->find("ready") != std::string::npos);
  Conn ctl(b.admin_socket());
  auto c = ctl.request({{"op", "config"}});
  ASSERT_TRUE(replied_ok(c));
  const auto max = (*c)["config"]["max-clients"].get<std::uint64_t>();
  EXPECT_GT(max, 0U);
  EXPECT_LT(max, 300U);
  EXPECT_NE(testing::read_file(log).find("--max-clients 4096 lowered to"), std::string::npos);
  broker.kill(SIGTERM);
  broker.wait();
}

}  // namespace
}  // namespace modelpool::fault
