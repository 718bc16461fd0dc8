// File: tests/server/session_test.cc
//
// A broker Session over a real socket pair, with the test as its peer:
// replies are written at once while the socket takes them, the rest of a
// reply the socket takes only part of is queued from where it stopped, and
// later replies wait behind it, so the peer reads every reply whole and in
// order; a peer that does not read past the bound is disconnected; a session
// closing after its flush sends what it owes first, and closes at the end of
// the flush grace if the peer does not read it.
#include "broker/server/session.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "shm/protocol/frame.hpp"

namespace modelpool::broker {
namespace {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

class SessionTest : public ::testing::Test {
 protected:
  // A session on one end of a fresh pair; the test holds the other end.
  std::shared_ptr<Session> make(std::size_t max_outbound) {
    Socket ours(io_);
    Socket theirs(io_);
    asio::local::connect_pair(ours, theirs);
    peer_ = std::move(theirs);
    auto s = std::make_shared<Session>(
        std::move(ours), 1, false, max_outbound,
        [this](const SessionPtr&, std::string_view payload) { frames_.emplace_back(payload); },
        [this](Session&) { ++closes_; });
    s->start();
    return s;
  }

  // Reads what the peer has now, without waiting; false once it hung up.
  bool peer_read() {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(peer_.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        decoder_.feed(buf, static_cast<std::size_t>(n));
        continue;
      }
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
  }

  // Runs the loop and reads until `count` replies arrived or the peer saw
  // a hang-up; returns the replies.
  std::vector<std::string> replies(std::size_t count) {
    std::vector<std::string> out;
    bool open = true;
    while (out.size() < count && open) {
      io_.poll();
      open = peer_read();
      for (;;) {
        auto f = decoder_.next();
        EXPECT_TRUE(f.ok()) << f.status().message();
        if (!f.ok() || !f->has_value()) break;
        out.push_back(std::move(**f));
      }
    }
    return out;
  }

  static std::string payload(int i, std::size_t size) {
    std::string p = std::to_string(i) + ":";
    p.resize(size, static_cast<char>('a' + i % 26));
    return p;
  }

  asio::io_context io_;
  Socket peer_{io_};
  proto::FrameDecoder decoder_;
  std::vector<std::string> frames_;
  int closes_ = 0;
};

TEST_F(SessionTest, RepliesPastAFullSocketArriveWholeAndInOrder) {
  auto s = make(64U << 20);
  // Near-maximal replies: the socket takes part of one of them (a frame is
  // more than one of its buffers), so the rest must be queued from there.
  std::vector<std::string> sent;
  for (int i = 0; i < 40; ++i) {
    sent.push_back(payload(i, proto::kMaxFrame - static_cast<std::size_t>(i) * 97));
    s->send(sent.back());
  }
  auto got = replies(sent.size());
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    ASSERT_EQ(got[i].size(), sent[i].size()) << "reply " << i;
    EXPECT_TRUE(got[i] == sent[i]) << "reply " << i << " changed on the way";
  }
  // Drained: the next reply goes straight out again.
  s->send("after");
  EXPECT_EQ(replies(1), std::vector<std::string>{"after"});
  EXPECT_EQ(closes_, 0);
}

TEST_F(SessionTest, APeerThatDoesNotReadIsClosedPastTheBound) {
  auto s = make(256U << 10);
  for (int i = 0; i < 64 && !s->closed(); ++i) s->send(payload(i, proto::kMaxFrame));
  EXPECT_TRUE(s->closed()) << "replies kept queueing for a peer that never reads";
  EXPECT_EQ(closes_, 1);
  io_.poll();  // the write in flight ends without touching the dropped queue
  EXPECT_EQ(closes_, 1);
}

TEST_F(SessionTest, ClosingAfterTheFlushSendsQueuedRepliesFirst) {
  auto s = make(64U << 20);
  std::vector<std::string> sent;
  for (int i = 0; i < 8; ++i) {
    sent.push_back(payload(i, proto::kMaxFrame / 2));
    s->send(sent.back());
  }
  s->close_after_flush();
  EXPECT_FALSE(s->closed()) << "replies are still queued";
  s->send("last");  // owed before the close: queued behind the rest
  sent.emplace_back("last");
  auto got = replies(sent.size() + 1);  // one more than sent: runs until the hang-up
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent) << "replies lost or changed on the way out";
  EXPECT_TRUE(s->closed());
  EXPECT_EQ(closes_, 1);
}

TEST_F(SessionTest, ClosingEndsAtTheFlushGraceWhenThePeerDoesNotRead) {
  auto s = make(64U << 20);
  s->set_flush_grace(std::chrono::milliseconds(50));
  for (int i = 0; i < 16; ++i) s->send(payload(i, proto::kMaxFrame));
  s->close_after_flush();
  ASSERT_FALSE(s->closed()) << "the socket took 1 MiB of replies at once";
  // The grace's timer closes it; nothing else is left to happen.
  while (!s->closed() && io_.run_one_for(std::chrono::seconds(10)) > 0) {
  }
  ASSERT_TRUE(s->closed()) << "the flush grace did not end the session";
  EXPECT_EQ(closes_, 1);
  io_.poll();
  EXPECT_EQ(closes_, 1);
}

TEST_F(SessionTest, FramesFromThePeerReachTheHandlerAsSent) {
  auto s = make(64U << 20);
  std::string bytes = proto::encode_frame("one") + proto::encode_frame(std::string(40000, 'x'));
  bytes += proto::encode_frame("three");
  ASSERT_EQ(asio::write(peer_, asio::buffer(bytes)), bytes.size());
  while (frames_.size() < 3) io_.run_one();
  EXPECT_EQ(frames_, (std::vector<std::string>{"one", std::string(40000, 'x'), "three"}));
}

}  // namespace
}  // namespace modelpool::broker
