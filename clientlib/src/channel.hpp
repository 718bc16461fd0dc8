// File: clientlib/src/channel.hpp
//
// One conversation with the broker over a connected socket: frames requests
// with the shared codec (shm/protocol), stamps each with an increasing "id"
// and matches replies to requests by it. The worker connection and the admin
// client are both built on it.
//
// call() sends a request and waits for its reply; notify() sends a request
// that asks for no reply (a release with "reply": false) and returns once it
// is sent.
//
// Errors: the broker's error replies come back with the broker's code and
// message and leave the channel usable. Transport failures (kUnavailable)
// and replies that break the protocol (kProtocol) break the channel:
// broken() turns true, a thread blocked in it wakes up, and every later call
// fails at once.
//
// Thread-safe: calls are serialized among themselves; notify() only waits
// for another thread's send, never for a reply, so it does not wait behind a
// call() that waits for a model to load.
#ifndef MODELPOOL_CLIENTLIB_SRC_CHANNEL_HPP_
#define MODELPOOL_CLIENTLIB_SRC_CHANNEL_HPP_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "clientlib/src/unix_socket.hpp"
#include "shm/protocol/frame.hpp"
#include "shm/protocol/hot_path.hpp"
#include "shm/protocol/release_ring.hpp"
#include "shm/status.hpp"

namespace modelpool::detail {

class Channel {
 public:
  // Connects to `socket_path`. `timeout` bounds each send and each wait for
  // a reply; nullopt waits as long as the broker takes. `err_out` as in
  // connect_unix.
  static Result<std::unique_ptr<Channel>> open(const std::string& socket_path,
                                               std::optional<std::chrono::milliseconds> timeout,
                                               int* err_out = nullptr);

  // Sends {"op": op, "id": N, ...fields} and returns the reply's fields
  // without "id" and "ok".
  Result<nlohmann::json> call(std::string_view op, nlohmann::json fields);
  // An acquire without a JSON DOM: `encode(id)` writes the request; the
  // reply comes back as its fields, checked as proto::acquire_reply_from
  // checks them (the broker's error as a Status), read through the flat
  // reader (proto::parse_flat_reply).
  using Encoder = std::function<std::string(std::uint64_t id)>;
  Result<proto::AcquireReply> call_acquire(const Encoder& encode);
  // Sends the request `encode(id)` writes, which must ask for no reply.
  Status notify(const Encoder& encode);
  // Drops `handle`: through the release ring when there is one and it has
  // room (a flush frame follows when the broker asks for one), else as a
  // release frame. Returns without waiting for the broker.
  Status release(std::uint64_t handle);

  // A file descriptor the broker passed with a reply (the hello's ring).
  UniqueFd take_passed_fd();
  void set_release_ring(proto::ReleaseRing ring);

  bool broken() const { return broken_.load(std::memory_order_acquire); }
  int native_fd() const { return fd_.get(); }  // for SO_PEERCRED (peer_check.hpp)
  const std::string& socket_path() const { return path_; }

  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

 private:
  Channel(std::string path, UniqueFd fd, std::optional<std::chrono::milliseconds> timeout)
      : path_(std::move(path)), fd_(std::move(fd)), timeout_(timeout) {}

  // Breaks the channel (shutdown, so blocked peers wake up; the fd is closed
  // with the Channel) and returns `code` with a message naming the socket.
  Status fail(ErrorCode code, const std::string& what);
  // Frames and sends a request; its id in `*id`. Takes send_mu_.
  Status send_request(const Encoder& encode, std::uint64_t* id);
  // Reads the next reply, which must be the one to `want` (one call at a
  // time, and notify() asks for none). Needs recv_mu_.
  struct Matched {
    std::string frame;
    proto::FlatReply flat;
  };
  Result<Matched> read_reply_locked(std::uint64_t want);
  // The same for a frame already read.
  Result<Matched> match_reply_locked(std::string_view frame, std::uint64_t want);
  // A reply's status: a broker error reply keeps the conversation in step,
  // a malformed one breaks the channel.
  Status reply_status_locked(const proto::FlatReply& flat);
  // The next frame: a view of decoder_'s buffer, valid until the next read.
  Result<std::string_view> read_frame_locked();

  const std::string path_;
  const UniqueFd fd_;
  const std::optional<std::chrono::milliseconds> timeout_;
  std::atomic<bool> broken_{false};

  std::mutex recv_mu_;           // serializes readers (and so calls)
  proto::FrameDecoder decoder_;  // GUARDED_BY(recv_mu_)
  UniqueFd passed_fd_;           // GUARDED_BY(recv_mu_)
  std::mutex ring_mu_;
  std::optional<proto::ReleaseRing> ring_;  // GUARDED_BY(ring_mu_)

  std::mutex send_mu_;
  std::uint64_t next_id_ = 1;  // GUARDED_BY(send_mu_)
  std::string out_;            // GUARDED_BY(send_mu_): the frame being sent
};

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_CHANNEL_HPP_
