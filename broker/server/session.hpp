// File: broker/server/session.hpp
//
// One client connection on the worker or the admin socket: reads frames,
// hands each request to the dispatcher, writes replies in order through a
// bounded outbound queue, and owns the handles acquired on it. A client that
// stops reading is disconnected once its queue exceeds the bound; a client
// that sends a bad frame gets an error reply and is closed. Lives on the
// event-loop thread only (not thread-safe).
#ifndef MODELPOOL_BROKER_SERVER_SESSION_HPP_
#define MODELPOOL_BROKER_SERVER_SESSION_HPP_

#include <sys/types.h>

#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "shm/protocol/frame.hpp"
#include "shm/protocol/release_ring.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

class Session;
using SessionPtr = std::shared_ptr<Session>;

// Called for every complete frame; owns the reply.
// `payload` views the session's receive buffer: valid for the call only.
using FrameHandler = std::function<void(const SessionPtr&, std::string_view payload)>;
// Called once when the connection is gone, before the Session is destroyed.
using CloseHandler = std::function<void(Session&)>;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::local::stream_protocol::socket socket, std::uint64_t id, bool admin,
          std::size_t max_outbound, FrameHandler on_frame, CloseHandler on_close);

  void start();
  // Queues one reply. Dropped silently when the session is closed.
  void send(std::string payload);
  void reply_ok(const nlohmann::json& id, nlohmann::json fields);
  void reply_error(const nlohmann::json& id, const Status& status);
  // Closes now (pending replies are discarded).
  void close(const char* why);
  // Stops reading; closes once every queued reply is written, or when the
  // flush grace ends first (a peer that does not read cannot hold it open).
  void close_after_flush();
  void set_flush_grace(std::chrono::milliseconds grace) { flush_grace_ = grace; }

  std::uint64_t id() const { return id_; }
  bool admin() const { return admin_; }
  bool closed() const { return closed_; }
  bool closing() const { return closing_; }  // after close_after_flush
  pid_t pid() const { return pid_; }
  uid_t uid() const { return uid_; }
  std::string describe() const;  // "client 7 (pid 1234, uid 1000)"
  std::unordered_set<std::uint64_t>& handles() { return handles_; }
  // Acquires of this connection queued for room (wait_ms), for
  // --max-waiting-per-client; kept by Service's RoomWaiter.
  std::size_t& room_waits() { return room_waits_; }

  // The release ring (shm/protocol/release_ring.hpp). reply_ok_with_ring
  // sends `fields` plus "release_ring" with the ring's memfd attached, and
  // returns false, having sent nothing, when it cannot: the connection has
  // one already, or replies are queued ahead of this one (the fd must ride
  // with this reply's first byte).
  bool reply_ok_with_ring(const nlohmann::json& id, nlohmann::json fields, bool wake);
  bool has_ring() const { return ring_.has_value(); }
  // Appends the handles released through the ring since the last call.
  Status drain_ring(std::vector<std::uint64_t>& out) {
    return ring_ ? ring_->drain(out) : Status{};
  }
  void set_ring_wake(bool on) {
    if (ring_) ring_->set_wake(on);
  }
  void drop_ring() { ring_.reset(); }  // a corrupt ring is read no more

 private:
  void read_more();
  void on_read(std::size_t n);
  void queue(std::string frame);  // behind the queued replies; bounded
  void write_more();

  boost::asio::local::stream_protocol::socket socket_;
  const std::uint64_t id_;
  const bool admin_;
  const std::size_t max_outbound_;
  FrameHandler on_frame_;
  CloseHandler on_close_;
  pid_t pid_ = 0;
  uid_t uid_ = 0;
  proto::FrameDecoder decoder_;
  std::array<char, 4096> read_buf_{};  // requests are small; a batch takes more reads
  std::deque<std::string> outbound_;
  std::string frame_;  // the reply being written directly (send)
  std::size_t outbound_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  bool closing_ = false;
  std::chrono::milliseconds flush_grace_{std::chrono::seconds(5)};
  boost::asio::steady_timer flush_deadline_;
  std::unordered_set<std::uint64_t> handles_;
  std::size_t room_waits_ = 0;
  std::optional<proto::ReleaseRing> ring_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_SESSION_HPP_
