// File: tests/security/failed_start_test.cc
//
// A start that fails (bad --metrics-addr, a busy metrics port) leaves
// nothing behind: no segment, no lock file, no run directory that this
// start created. A segment adopted from a previous run, holding models, is
// kept, and the next good start adopts it.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "security_support.hpp"

namespace modelpool::testing {
namespace {

namespace fs = std::filesystem;

// A TCP port held busy for the test's lifetime.
class BusyPort {
 public:
  BusyPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 1) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("cannot hold a port");
    }
    port_ = ntohs(a.sin_port);
  }
  ~BusyPort() { ::close(fd_); }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

void expect_nothing_left(const Broker& b) {
  EXPECT_FALSE(fs::exists(b.segment_path())) << "the failed start left its segment";
  EXPECT_FALSE(fs::exists(b.run_dir() + "/" + b.pool() + ".lock")) << "it left the lock file";
  EXPECT_FALSE(fs::exists(b.run_dir())) << "it left the run directory it created";
}

TEST(FailedStart, BadMetricsAddressLeavesNothing) {
  ScratchDir models;
  Broker b(models.path(), {"--metrics-addr", "no-port-here"});
  const Outcome o = run(bounded(b.argv()));
  EXPECT_NE(o.code, 0);
  EXPECT_NE(o.err.find("--metrics-addr"), std::string::npos) << o.err;
  expect_nothing_left(b);
}

TEST(FailedStart, BusyMetricsPortLeavesNothing) {
  ScratchDir models;
  models.write_random("m.bin", 1 << 20, 5);
  BusyPort busy;
  Broker b(models.path(), {"--metrics-addr", busy.addr(), "--preload", "m.bin"});
  const Outcome o = run(bounded(b.argv()));
  EXPECT_NE(o.code, 0);
  EXPECT_NE(o.err.find("cannot serve metrics on " + busy.addr()), std::string::npos) << o.err;
  expect_nothing_left(b);
}

TEST(FailedStart, AdoptedSegmentWithModelsIsKept) {
  ScratchDir models;
  models.write_random("m.bin", 1 << 20, 6);
  Broker first(models.path(), {}, "");
  first.start();
  ASSERT_EQ(first.admin("load", {{"model", "m.bin"}})["ok"], true);
  ASSERT_EQ(exit_code(first.stop()), 0);
  ASSERT_TRUE(fs::exists(first.segment_path()));

  BusyPort busy;
  Broker failing(models.path(), {"--metrics-addr", busy.addr()}, first.pool());
  const Outcome o = run(bounded(failing.argv()));
  EXPECT_NE(o.code, 0) << o.err;
  EXPECT_TRUE(fs::exists(first.segment_path())) << "a failed start removed an adopted segment";

  Broker again(models.path(), {}, first.pool());
  again.start();
  const json list = again.admin("list");
  ASSERT_EQ(list["ok"], true) << list.dump();
  ASSERT_EQ(list["models"].size(), 1U) << list.dump();
  EXPECT_EQ(list["models"][0]["name"], "m.bin");
}

}  // namespace
}  // namespace modelpool::testing
