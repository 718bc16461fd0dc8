// File: tests/integration/release_ring_test.cc
//
// The release ring against the real broker: a worker asks for it in its
// hello and gets a sealed memfd with the reply; handles pushed there are
// released when the broker next looks (the connection's next request, any
// admin request, a load that needs room), a ring that lies about its head
// closes only that connection, handles the connection does not hold stay
// held, and the admin socket never gets a ring. The Client API's use of it
// (fallback to frames when full, flush when acquires wait for room) is
// covered here and in tests/budget/room_test.cc.
#include "shm/protocol/release_ring.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <modelpool/client.hpp>
#include <string>
#include <vector>

#include "broker_fixture.hpp"

namespace modelpool::testing {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

// Reads one frame from `conn` with recvmsg, keeping a passed descriptor.
json recv_frame_with_fd(RawConn& conn, int* fd_out) {
  std::string bytes;
  *fd_out = -1;
  std::uint32_t need = 0;
  for (;;) {
    if (bytes.size() >= 4) {
      std::memcpy(&need, bytes.data(), 4);
      if (bytes.size() >= 4 + static_cast<std::size_t>(need)) break;
    }
    char buf[4096];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(conn.fd(), &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return json();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        std::memcpy(fd_out, CMSG_DATA(c), sizeof(int));
      }
    }
    bytes.append(buf, static_cast<std::size_t>(n));
  }
  return json::parse(bytes.substr(4, need));
}

// A raw worker connection that asked for a ring in its hello.
struct RingConn {
  explicit RingConn(const std::string& socket) : conn(socket) {
    conn.send_frame(json{{"op", "hello"}, {"id", 1}, {"release_ring", true}}.dump());
    int fd = -1;
    hello = recv_frame_with_fd(conn, &fd);
    if (fd >= 0) {
      auto r = proto::ReleaseRing::attach(fd);
      void* p =
          ::mmap(nullptr, proto::kReleaseRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      ::close(fd);
      if (r.ok()) ring.emplace(std::move(r).value());
      if (p != MAP_FAILED) page = static_cast<proto::ReleaseRingLayout*>(p);
    }
  }
  ~RingConn() {
    if (page != nullptr) ::munmap(page, proto::kReleaseRingBytes);
  }
  RingConn(const RingConn&) = delete;
  RingConn& operator=(const RingConn&) = delete;
  std::uint64_t acquire(const std::string& model) {
    json r = conn.request({{"op", "acquire"}, {"id", 2}, {"model", model}});
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    return r.value("handle", std::uint64_t{0});
  }
  RawConn conn;
  json hello;
  std::optional<proto::ReleaseRing> ring;
  proto::ReleaseRingLayout* page = nullptr;  // the same page, for writing what a worker should not
};

// Lines of the broker's debug log for release frames.
std::size_t release_frames(const Broker& broker) {
  const std::string log = broker.stderr_text();
  std::size_t n = 0;
  for (std::size_t at = log.find("-> release"); at != std::string::npos;
       at = log.find("-> release", at + 1)) {
    ++n;
  }
  return n;
}

std::uint64_t refs_of(const Broker& broker, const std::string& model) {
  const json list = broker.admin("list");
  for (const json& row : list["models"]) {
    if (row["name"] == model && row["current"] == true) return row["refs"].get<std::uint64_t>();
  }
  ADD_FAILURE() << model << " is not resident: " << list.dump();
  return 0;
}

TEST(ReleaseRing, HandlesPushedToTheRingAreReleasedWithoutAFrame) {
  ScratchDir models;
  models.write_random("a", kMiB);
  Broker broker(models.path());
  broker.start();
  RingConn w(broker.worker_socket());
  ASSERT_TRUE(w.ring.has_value()) << "no ring came with the hello reply: " << w.hello.dump();
  EXPECT_EQ(w.hello["release_ring"]["slots"], proto::kReleaseRingSlots);
  const std::uint64_t h1 = w.acquire("a");
  const std::uint64_t h2 = w.acquire("a");
  EXPECT_EQ(refs_of(broker, "a"), 2U);
  ASSERT_TRUE(w.ring->push(h1));
  EXPECT_FALSE(w.ring->wake_requested());
  EXPECT_EQ(refs_of(broker, "a"), 1U);  // the admin request took it
  EXPECT_EQ(broker.admin("stats")["releases"], 1);
  // The connection's own next request takes what it pushed before it.
  ASSERT_TRUE(w.ring->push(h2));
  json again = w.conn.request({{"op", "release"}, {"id", 3}, {"handle", h2}});
  EXPECT_EQ(again["error"]["code"], "stale_handle") << again.dump();
  EXPECT_EQ(refs_of(broker, "a"), 0U);
}

TEST(ReleaseRing, ALoadThatNeedsRoomSeesReleasesStillInAnotherConnectionsRing) {
  ScratchDir models;
  models.write_random("a", 10 * kMiB, 1);
  models.write_random("b", 10 * kMiB, 2);
  Broker broker(models.path(), {"--memory", "16MiB"});
  broker.start();
  RingConn holder(broker.worker_socket());
  ASSERT_TRUE(holder.ring.has_value());
  ASSERT_TRUE(holder.ring->push(holder.acquire("a")));
  // No request from `holder` follows: only the load of b can find the release.
  RawConn other(broker.worker_socket());
  json r = other.request({{"op", "acquire"}, {"id", 1}, {"model", "b"}});
  EXPECT_TRUE(r.value("ok", false)) << r.dump();
  const json list = broker.admin("list")["models"];
  ASSERT_EQ(list.size(), 1U) << list.dump();
  EXPECT_EQ(list[0]["name"], "b");
}

TEST(ReleaseRing, HandlesTheConnectionDoesNotHoldStayHeld) {
  ScratchDir models;
  models.write_random("a", kMiB);
  Broker broker(models.path());
  broker.start();
  RingConn stranger(broker.worker_socket());
  ASSERT_TRUE(stranger.ring.has_value());
  RingConn owner(broker.worker_socket());
  const std::uint64_t theirs = owner.acquire("a");
  for (std::uint32_t i = 0; i < proto::kReleaseRingSlots; ++i) {
    ASSERT_TRUE(stranger.ring->push(i % 2 == 0 ? theirs : 987654321));
  }
  EXPECT_FALSE(stranger.ring->push(theirs));  // full: a worker sends a frame instead
  EXPECT_EQ(refs_of(broker, "a"), 1U);        // 256 releases refused, one by one
  EXPECT_EQ(broker.admin("stats")["releases"], 0);
  EXPECT_TRUE(stranger.ring->push(theirs));  // the broker took them: room again
  stranger.acquire("a");
  EXPECT_EQ(refs_of(broker, "a"), 2U);
}

TEST(ReleaseRing, AHeadRunningAheadOfTheRingClosesOnlyThatConnection) {
  ScratchDir models;
  models.write_random("a", kMiB);
  Broker broker(models.path());
  broker.start();
  RingConn liar(broker.worker_socket());
  ASSERT_NE(liar.page, nullptr);
  liar.acquire("a");
  RingConn honest(broker.worker_socket());
  honest.acquire("a");
  EXPECT_EQ(refs_of(broker, "a"), 2U);
  std::atomic_ref<std::uint64_t>(liar.page->head).store(proto::kReleaseRingSlots + 1);
  liar.conn.send_frame(json{{"op", "acquire"}, {"id", 5}, {"model", "a"}}.dump());
  auto r = liar.conn.recv();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["error"]["code"], "protocol_error") << r->dump();
  EXPECT_NE((*r)["error"]["message"].get<std::string>().find("release ring"), std::string::npos);
  EXPECT_FALSE(liar.conn.recv().has_value()) << "the connection stayed open";
  // Its handle went with it; the other connection and the broker carry on.
  EXPECT_EQ(refs_of(broker, "a"), 1U);
  honest.acquire("a");
  EXPECT_EQ(refs_of(broker, "a"), 2U);
}

TEST(ReleaseRing, TheAdminSocketGetsNoRingAndABadFlagIsBadRequest) {
  ScratchDir models;
  Broker broker(models.path());
  broker.start();
  RawConn admin(broker.admin_socket());
  admin.send_frame(json{{"op", "hello"}, {"id", 1}, {"release_ring", true}}.dump());
  int fd = -1;
  json r = recv_frame_with_fd(admin, &fd);
  EXPECT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_FALSE(r.contains("release_ring")) << r.dump();
  EXPECT_EQ(fd, -1);
  RawConn worker(broker.worker_socket());
  r = worker.request({{"op", "hello"}, {"id", 2}, {"release_ring", "yes"}});
  EXPECT_EQ(r["error"]["code"], "bad_request") << r.dump();
  r = worker.request({{"op", "hello"}, {"id", 3}});
  EXPECT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_FALSE(r.contains("release_ring"));
}

TEST(ReleaseRing, ClientReleasesPastAFullRingGoAsFrames) {
  ScratchDir models;
  models.write_random("a", kMiB);
  Broker broker(models.path(), {"--log-level", "debug"});
  broker.capture_stderr(models.path() + "/broker.log");
  broker.start();
  Client client = Client::connect(broker.worker_socket());
  std::vector<Model> held;
  const std::size_t n = proto::kReleaseRingSlots + 44;
  for (std::size_t i = 0; i < n; ++i) held.push_back(client.acquire("a"));
  EXPECT_EQ(refs_of(broker, "a"), n);
  held.clear();  // 256 fill the ring; the next goes as a frame
  // A round trip on the same connection: every frame before it has been read.
  Model last = client.acquire("a");
  EXPECT_EQ(refs_of(broker, "a"), 1U);
  EXPECT_EQ(broker.admin("stats")["releases"], n);
  // The first frame makes the broker empty the ring, so later releases may
  // find room in it again: at least 256 went through the ring, and one frame.
  const std::size_t frames = release_frames(broker);
  EXPECT_GE(frames, 1U);
  EXPECT_LE(frames, n - proto::kReleaseRingSlots);
  EXPECT_EQ(broker.admin("selfcheck")["consistent"], true);
}

TEST(ReleaseRing, AClientWithoutTheRingReleasesByFrames) {
  ScratchDir models;
  models.write_random("a", kMiB);
  Broker broker(models.path(), {"--log-level", "debug"});
  broker.capture_stderr(models.path() + "/broker.log");
  broker.start();
  ClientOptions options;
  options.release_ring = false;
  Client client = Client::connect(broker.worker_socket(), options);
  Model m = client.acquire("a");
  EXPECT_EQ(refs_of(broker, "a"), 1U);
  m.release();
  Model again = client.acquire("a");  // a round trip after the release frame
  EXPECT_EQ(refs_of(broker, "a"), 1U);
  EXPECT_EQ(release_frames(broker), 1U);
}

}  // namespace
}  // namespace modelpool::testing
