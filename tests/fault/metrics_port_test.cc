// File: tests/fault/metrics_port_test.cc
//
// The metrics port is unauthenticated TCP, so nobody may tie the broker up
// through it: connections past --metrics-max-clients are closed at once, a
// connection that does not finish its exchange is closed after
// --metrics-idle-timeout, workers are served meanwhile, and an accept that
// fails for want of descriptors backs off instead of spinning. Each runs
// against the real broker over real TCP sockets.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
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
using Clock = std::chrono::steady_clock;

// A TCP connection to 127.0.0.1:port, closed on destruction.
class Tcp {
 public:
  explicit Tcp(unsigned short port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Tcp() {
    if (fd_ >= 0) ::close(fd_);
  }
  Tcp(const Tcp&) = delete;
  Tcp& operator=(const Tcp&) = delete;
  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes) {
    return fd_ >= 0 && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                           static_cast<ssize_t>(bytes.size());
  }
  // Reads until the peer closes or `timeout` passes; true on EOF (or reset).
  bool read_to_eof(std::chrono::milliseconds timeout, std::string* got = nullptr) {
    if (fd_ < 0) return true;
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    for (int i = 0; i < 100000; ++i) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left > 0 ? left : 0)) > 0) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return true;
        if (got != nullptr) got->append(buf, static_cast<std::size_t>(n));
      } else if (Clock::now() >= deadline) {
        return false;
      }
    }
    return false;
  }

 private:
  int fd_;
};

// GET /metrics; the whole response, "" when the broker closed unanswered.
std::string scrape(unsigned short port) {
  Tcp t(port);
  std::string got;
  if (!t.send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")) return got;
  (void)t.read_to_eof(std::chrono::seconds(10), &got);
  return got;
}

bool scraped(const std::string& response) {
  return response.rfind("HTTP/1.1 200", 0) == 0 &&
         response.find("modelpool_handles") != std::string::npos;
}

unsigned short metrics_port(const Broker& b) {
  const std::string key = "metrics port ";
  const auto at = b.ready_line().find(key);
  return at == std::string::npos
             ? 0
             : static_cast<unsigned short>(std::stoul(b.ready_line().substr(at + key.size())));
}

class MetricsPort : public ::testing::Test {
 protected:
  void SetUp() override { models_.write_random("a.bin", 1 << 20, 1); }
  ScratchDir models_;
  ScratchDir logs_;
};

// 4 + 3 idle connections with a cap of 4: the 3 late ones are closed at
// once, the 4 stay until their idle timeout, a worker acquires meanwhile,
// and a fresh scrape is served once they have timed out.
TEST_F(MetricsPort, ConnectionsPastTheCapAreClosedAndIdleOnesTimeOut) {
  Broker b(models_.path(), {"--metrics-addr", "127.0.0.1:0", "--metrics-max-clients", "4",
                            "--metrics-idle-timeout", "5"});
  b.start();
  const unsigned short port = metrics_port(b);
  ASSERT_NE(port, 0);
  std::vector<std::unique_ptr<Tcp>> held, late;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<Tcp>(port));
  for (int i = 0; i < 3; ++i) late.push_back(std::make_unique<Tcp>(port));
  const auto opened = Clock::now();
  for (auto& t : late) {
    ASSERT_TRUE(t->connected());
    EXPECT_TRUE(t->read_to_eof(std::chrono::seconds(4))) << "a connection past the cap is closed";
  }
  // The held ones time out 5 s after they opened: check them before that
  // (a machine too slow for that skips the checks rather than fail them).
  auto in_time = [&] { return Clock::now() - opened < std::chrono::seconds(4); };
  for (auto& t : held) {
    ASSERT_TRUE(t->connected());
    if (in_time()) {
      EXPECT_FALSE(t->read_to_eof(std::chrono::milliseconds(0)));
    }
  }
  Conn w(b.worker_socket());
  auto r = w.request({{"op", "acquire"}, {"id", 1}, {"model", "a.bin"}});
  ASSERT_TRUE(replied_ok(r)) << (r ? r->dump() : "no reply");
  if (in_time()) {
    EXPECT_EQ(scrape(port), "") << "the cap is full: closed unanswered";
  }
  for (auto& t : held) {
    EXPECT_TRUE(t->read_to_eof(std::chrono::seconds(20))) << "an idle connection times out";
  }
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) served = scraped(scrape(port));
  EXPECT_TRUE(served) << "a fresh scrape is served once the idle ones are gone";
  EXPECT_TRUE(replied_ok(w.request({{"op", "release"}, {"handle", (*r)["handle"]}})));
}

// A request that never finishes (half a header) is closed after the idle
// timeout, not held open for as long as the client likes.
TEST_F(MetricsPort, UnfinishedRequestIsClosedAfterTheIdleTimeout) {
  Broker b(models_.path(), {"--metrics-addr", "127.0.0.1:0", "--metrics-idle-timeout", "1"});
  b.start();
  const unsigned short port = metrics_port(b);
  ASSERT_NE(port, 0);
  Tcp slow(port);
  const auto start = Clock::now();
  ASSERT_TRUE(slow.send("GET /metrics HTTP/1.1\r\nHost: local"));
  std::string got;
  EXPECT_TRUE(slow.read_to_eof(std::chrono::seconds(15), &got)) << "closed by the broker";
  const auto took = Clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(900)) << "not before the timeout";
  EXPECT_EQ(got, "") << "nothing is answered to half a request";
  EXPECT_TRUE(scraped(scrape(port)));
}

// Metrics connections past the broker's descriptor limit (lowered on the
// running broker with prlimit) make accept fail with EMFILE: the broker
// backs off instead of spinning, logs it a few times at most, and scrapes
// again once descriptors are free.
TEST_F(MetricsPort, DescriptorExhaustionBacksOffInsteadOfSpinning) {
  const std::string log = logs_.path() + "/broker.log";
  Broker b(models_.path(), {"--log-file", log, "--metrics-addr", "127.0.0.1:0",
                            "--metrics-max-clients", "1000", "--metrics-idle-timeout", "60"});
  b.start();
  const unsigned short port = metrics_port(b);
  ASSERT_NE(port, 0);
  Conn ctl(b.admin_socket());
  const rlimit low{64, 64};
  ASSERT_EQ(::prlimit(b.pid(), RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);
  std::vector<std::unique_ptr<Tcp>> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<Tcp>(port));
  ASSERT_TRUE(replied_ok(ctl.request({{"op", "health"}})));  // the loop is past the burst
  EXPECT_FALSE(spins(cpu_ticks_over_one_second(b.pid(), "with metrics accepts failing")));
  idle.clear();  // descriptors come back as the broker sees the closes
  bool served = false;
  for (int i = 0; i < 200 && !served; ++i) served = scraped(scrape(port));
  EXPECT_TRUE(served) << "a scrape is served once descriptors are free";
  b.stop();
  const int lines = count_lines_with(log, "metrics: accept failed");
  EXPECT_GE(lines, 1);
  EXPECT_LE(lines, 5) << "accept failures are reported once per interval";
}

}  // namespace
}  // namespace modelpool::fault
