// File: tests/admin/probes_notify_test.cc
//
// What an orchestrator and a service manager see of a real broker: the
// metrics port answers /healthz and /readyz, to GET and to HEAD, and refuses
// other methods; and with $NOTIFY_SOCKET pointing at a datagram socket the
// test owns (as systemd's would), the broker says STATUS=preloading, then
// READY=1 only once its preload is resident, pings WATCHDOG=1 when
// $WATCHDOG_USEC asks for it, says RELOADING=1 and READY=1 around a SIGHUP,
// and STOPPING=1 at SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "admin_support.hpp"

namespace modelpool::testing {
namespace {

TEST(Probes, HealthAndReadinessAnswerGetAndHead) {
  ScratchDir models;
  models.write_random("a.bin", 1 << 20, 1);
  Broker b(models.path(), {"--metrics-addr", "127.0.0.1:0"});
  b.start();
  const unsigned short port = metrics_port(b);
  ASSERT_NE(port, 0) << b.ready_line();

  const HttpReply health = http_get(port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  const HttpReply ready = http_get(port, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready\n");

  for (const char* target : {"/healthz", "/readyz", "/metrics"}) {
    const HttpReply head = http_request(port, "HEAD", target);
    EXPECT_EQ(head.status, 200) << target;
    EXPECT_TRUE(head.body.empty()) << target;
    EXPECT_NE(head.content_length, "") << target;
    EXPECT_NE(head.content_length, "0") << target << ": the length GET would send";
  }
  EXPECT_EQ(http_request(port, "HEAD", "/nothing").status, 404);
  EXPECT_EQ(http_request(port, "POST", "/metrics").status, 405);
  EXPECT_EQ(http_request(port, "DELETE", "/readyz").status, 405);
}

// A datagram socket bound at a path, as systemd's notify socket is.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot bind " + path_);
    }
    const timeval limit{10, 0};  // a broker that says nothing fails the test
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // The next message; "" after 10 s without one.
  std::string next() {
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }
  // Messages up to and including the first that contains `want` (at most
  // 200, and none after a 10 s silence); the last one is "" when it never came.
  std::vector<std::string> until(const std::string& want) {
    std::vector<std::string> seen;
    for (int i = 0; i < 200; ++i) {
      seen.push_back(next());
      if (seen.back().empty() || seen.back().find(want) != std::string::npos) break;
    }
    return seen;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

bool has(const std::string& message, const std::string& line) {
  return ("\n" + message + "\n").find("\n" + line + "\n") != std::string::npos;
}

TEST(Notify, ReadyOnlyAfterThePreloadThenWatchdogReloadAndStopping) {
  ScratchDir models;
  models.write_random("big.bin", 24 << 20, 1);
  NotifySocket sock(models.path() + "/notify.sock");
  ::setenv("NOTIFY_SOCKET", sock.path().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "200000", 1);  // pings every 100 ms
  Broker b(models.path(), {"--preload", "big.bin"});
  b.start();  // returns at the ready line; the child has the environment now
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");

  const std::vector<std::string> start = sock.until("READY=1");
  ASSERT_FALSE(start.back().empty()) << "no READY=1";
  bool preloading_first = false;
  for (std::size_t i = 0; i + 1 < start.size(); ++i) {
    preloading_first |= has(start[i], "STATUS=preloading");
  }
  EXPECT_TRUE(preloading_first) << "STATUS=preloading comes before READY=1";
  EXPECT_NE(start.back().find("STATUS=serving pool"), std::string::npos) << start.back();
  EXPECT_NE(start.back().find("1 model(s), 24.0 MiB"), std::string::npos)
      << "READY=1 once the preload is resident: " << start.back();
  EXPECT_EQ(b.admin("stats")["bytes_used"], 24 << 20);

  EXPECT_FALSE(sock.until("WATCHDOG=1").back().empty()) << "no watchdog ping";

  ASSERT_EQ(::kill(b.pid(), SIGHUP), 0);
  const std::vector<std::string> reload = sock.until("READY=1");
  ASSERT_FALSE(reload.back().empty()) << "no READY=1 after the reload";
  bool reloading = false;
  for (const std::string& m : reload) reloading |= has(m, "RELOADING=1");
  EXPECT_TRUE(reloading) << "RELOADING=1 before READY=1";

  EXPECT_EQ(exit_code(b.stop(SIGTERM)), 0);
  EXPECT_FALSE(sock.until("STOPPING=1").back().empty()) << "no STOPPING=1";
}

}  // namespace
}  // namespace modelpool::testing
