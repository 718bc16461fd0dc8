// File: tests/fault/hostile_client_test.cc
//
// Slow and hostile clients cannot hurt the broker or other clients: replies
// to a client that sends far ahead of its reading arrive whole and in order,
// also when the broker is stopped meanwhile;
// a client that stops reading is disconnected once its unsent replies pass
// --max-outbound (with a log line) and loses its handles; 10,000
// connections opened and closed leak no descriptor and no memory (measured
// in /proc/PID); a client flooding requests as fast as it can does not
// starve another client's round trips.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "broker_fixture.hpp"
#include "fault_support.hpp"

namespace modelpool::fault {
namespace {

using testing::Broker;
using testing::ScratchDir;
using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

class HostileClients : public ::testing::Test {
 protected:
  void SetUp() override { models_.write_random("m.bin", 1 << 20, 1); }

  // Polls stats on `ctl` until only `ctl` is connected and no handle is held.
  static json wait_idle(Conn& ctl) {
    json s;
    for (int i = 0; i < 100000; ++i) {
      auto r = ctl.request({{"op", "stats"}});
      if (!r) return json{{"clients", -1}, {"handles", -1}};  // the broker is gone
      s = *r;
      if (s["clients"] == 1 && s["handles"] == 0) break;
    }
    return s;
  }

  ScratchDir models_;
  ScratchDir logs_;
};

TEST_F(HostileClients, ClientThatStopsReadingIsDisconnectedWithALogLine) {
  Broker b(models_.path(), {"--max-outbound", "64KiB"});
  b.capture_stderr(logs_.path() + "/broker.log");
  b.start();
  Conn slow(b.worker_socket());
  ASSERT_TRUE(replied_ok(slow.request({{"op", "acquire"}, {"model", "m.bin"}})));
  timeval limit{20, 0};  // a broker that never hangs up fails the test instead of hanging it
  ::setsockopt(slow.fd(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += proto::encode_frame(R"({"op":"hello"})");
  std::uint64_t sent = 0;
  while (slow.send_bytes(batch)) {
    sent += batch.size();
    ASSERT_LT(sent, 256U << 20) << "the broker kept queueing replies for a client that never reads";
  }
  EXPECT_NE(b.stderr_text().find("does not read its replies"), std::string::npos)
      << b.stderr_text();
  EXPECT_TRUE(replied_ok(Conn(b.worker_socket()).request({{"op", "hello"}})))
      << "the broker lives on";
  Conn ctl(b.admin_socket());
  json s = wait_idle(ctl);
  EXPECT_EQ(s["clients"], 1);
  EXPECT_EQ(s["handles"], 0) << "the slow client's handle went with its connection";
  auto check = ctl.request({{"op", "selfcheck"}});
  EXPECT_TRUE(check && check->value("consistent", false));
}

// Replies are written at once while the socket takes them and queued from
// where the socket stopped when it does not: a client that sends thousands
// of requests before reading gets every reply, whole and in order.
TEST_F(HostileClients, RepliesPastAFullSocketArriveWholeAndInOrder) {
  Broker b(models_.path());
  b.start();
  Conn c(b.worker_socket());
  constexpr int kRequests = 5000;  // ~1 MiB of replies: several socket buffers
  std::string batch;
  for (int i = 0; i < kRequests; ++i) {
    batch += proto::encode_frame(json{{"op", "acquire"}, {"id", i}, {"model", "m.bin"}}.dump());
  }
  ASSERT_TRUE(c.send_bytes(batch));
  std::vector<std::uint64_t> handles;
  for (int i = 0; i < kRequests; ++i) {
    auto r = c.recv();
    ASSERT_TRUE(replied_ok(r)) << "reply " << i << ": " << (r ? r->dump() : "none");
    ASSERT_EQ((*r)["id"], i) << "replies out of order";
    handles.push_back((*r)["handle"].get<std::uint64_t>());
  }
  std::sort(handles.begin(), handles.end());
  EXPECT_EQ(std::adjacent_find(handles.begin(), handles.end()), handles.end())
      << "a handle was granted twice";
  Conn ctl(b.admin_socket());
  auto s = ctl.request({{"op", "stats"}});
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["handles"], kRequests);
}

// SIGTERM answers what the broker has taken in: replies still queued for a
// client that has not read them yet go out before the connection closes.
TEST_F(HostileClients, ShutdownSendsTheRepliesStillQueued) {
  Broker b(models_.path());
  b.start();
  Conn c(b.worker_socket());
  constexpr int kRequests = 5000;  // ~1 MiB of replies: most wait in the broker's queue
  std::string batch;
  for (int i = 0; i < kRequests; ++i) {
    batch += proto::encode_frame(json{{"op", "acquire"}, {"id", i}, {"model", "m.bin"}}.dump());
  }
  ASSERT_TRUE(c.send_bytes(batch));
  Conn ctl(b.admin_socket());
  for (json s = json::object(); s.value("handles", 0) < kRequests;) {  // every request answered
    auto r = ctl.request({{"op", "stats"}});
    ASSERT_TRUE(r) << "the broker is gone";
    s = *r;
  }
  ctl.close();
  ASSERT_EQ(::kill(b.pid(), SIGTERM), 0);
  for (int i = 0; i < kRequests; ++i) {
    auto r = c.recv();
    ASSERT_TRUE(replied_ok(r)) << "reply " << i << " of " << kRequests << " lost at shutdown";
    ASSERT_EQ((*r)["id"], i);
  }
  EXPECT_FALSE(c.recv(std::chrono::seconds(10))) << "the connection closes after the last reply";
  EXPECT_EQ(b.wait_exit(), 0) << "exit status";
}

TEST_F(HostileClients, TenThousandConnectionsLeakNoDescriptorsOrMemory) {
  Broker b(models_.path());
  b.start();
  Conn ctl(b.admin_socket());  // stays open: it is part of both measurements
  ASSERT_TRUE(replied_ok(ctl.request({{"op", "load"}, {"model", "m.bin"}})));
  auto churn = [&](int n) {
    for (int i = 0; i < n; i += 50) {
      std::vector<std::unique_ptr<Conn>> batch;
      for (int j = 0; j < 50; ++j) batch.push_back(std::make_unique<Conn>(b.worker_socket()));
      for (int j = 0; j < 50; ++j) {
        Conn& c = *batch[static_cast<std::size_t>(j)];
        ASSERT_FALSE(c.closed());
        if (j % 3 == 0) {
          ASSERT_TRUE(c.request({{"op", "hello"}}).has_value());
        }
        if (j % 3 == 1) {
          ASSERT_TRUE(c.request({{"op", "acquire"}, {"model", "m.bin"}}).has_value());
        }
        // j % 3 == 2: connects and hangs up without a word
      }
    }
  };
  churn(1000);  // warm-up: allocator arenas and hash tables reach their working size
  wait_idle(ctl);
  const std::size_t fds_before = open_fds(b.pid());
  const std::uint64_t rss_before = vm_rss_bytes(b.pid());
  churn(10000);
  json s = wait_idle(ctl);
  const std::size_t fds_after = open_fds(b.pid());
  const std::uint64_t rss_after = vm_rss_bytes(b.pid());
  std::printf("10000 connections: fds %zu -> %zu, VmRSS %llu -> %llu KiB\n", fds_before, fds_after,
              static_cast<unsigned long long>(rss_before >> 10),
              static_cast<unsigned long long>(rss_after >> 10));
  EXPECT_EQ(s["clients"], 1);
  EXPECT_EQ(s["handles"], 0);
  EXPECT_EQ(fds_after, fds_before);
  if (kSanitized) {
    // Sanitizer allocators keep freed memory (ASan's quarantine): RSS says
    // nothing there, but LeakSanitizer checks the broker when it exits.
    EXPECT_EQ(b.stop(SIGTERM), 0) << "the broker exits cleanly (and leak-free under ASan)";
    return;
  }
  EXPECT_LT(rss_after, rss_before + (4U << 20))
      << "a session costs ~17 KiB: 10000 leaked would be 170 MiB";
}

// A client that pipelines requests as fast as the broker answers them (up
// to 2000 in flight), on its own thread pair.
class Flooder {
 public:
  explicit Flooder(const std::string& socket) : conn_(socket) {
    for (int i = 0; i < 200; ++i) batch_ += proto::encode_frame(R"({"op":"hello"})");
    writer_ = std::thread([this] { write(); });
    reader_ = std::thread([this] { read(); });
  }
  ~Flooder() {
    stop_ = true;
    ::shutdown(conn_.fd(), SHUT_RDWR);
    writer_.join();
    reader_.join();
  }
  std::uint64_t replies() const { return replies_.load(); }
  bool gone() const { return gone_.load(); }

 private:
  void write() {
    while (!stop_.load() && !gone_.load()) {
      if (sent_ - replies_.load() > 2000) {
        std::this_thread::yield();
        continue;
      }
      if (::send(conn_.fd(), batch_.data(), batch_.size(), MSG_NOSIGNAL) <= 0) break;
      sent_ += 200;
    }
  }
  void read() {
    proto::FrameDecoder d;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(conn_.fd(), buf, sizeof buf)) > 0) {
      d.feed(buf, static_cast<std::size_t>(n));
      for (auto f = d.next(); f.ok() && f->has_value(); f = d.next()) replies_.fetch_add(1);
    }
    gone_ = true;
  }

  Conn conn_;
  std::string batch_;
  std::uint64_t sent_ = 0;
  std::atomic<std::uint64_t> replies_{0};
  std::atomic<bool> stop_{false}, gone_{false};
  std::thread writer_, reader_;
};

TEST_F(HostileClients, FlooderDoesNotStarveAnotherClient) {
  Broker b(models_.path());
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "m.bin"}})["ok"].get<bool>());
  Flooder flood(b.worker_socket());
  while (flood.replies() < 20000 && !flood.gone()) std::this_thread::yield();  // the flood is on
  ASSERT_FALSE(flood.gone());

  Conn victim(b.worker_socket());
  std::vector<double> ms;
  const std::uint64_t flood_at_start = flood.replies();
  for (int i = 0; i < 300; ++i) {
    const auto t0 = Clock::now();
    auto a = victim.request({{"op", "acquire"}, {"model", "m.bin"}});
    ASSERT_TRUE(replied_ok(a)) << (a ? a->dump() : "no reply");
    ASSERT_TRUE(replied_ok(victim.request({{"op", "release"}, {"handle", (*a)["handle"]}})));
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const std::uint64_t flooded = flood.replies() - flood_at_start;
  std::sort(ms.begin(), ms.end());
  std::printf(
      "victim round trips under flood: p50 %.2f ms, p99 %.2f ms, max %.2f ms; the flooder "
      "got %llu replies meanwhile\n",
      ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back(),
      static_cast<unsigned long long>(flooded));
  EXPECT_FALSE(flood.gone());
  EXPECT_GT(flooded, 10U) << "the flood ran while the victim was served";
  EXPECT_LT(ms[ms.size() / 2], 250.0);
  EXPECT_LT(ms.back(), 2000.0);
  EXPECT_TRUE(b.admin("health")["ok"].get<bool>());
}

}  // namespace
}  // namespace modelpool::fault
