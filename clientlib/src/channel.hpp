// File: clientlib/src/channel.hpp
//
// One request/reply conversation with the broker over a connected socket:
// frames a request with the shared codec (shm/protocol), stamps it with an
// increasing "id", reads the next frame and checks that the reply carries the
// same id. The worker connection and the admin client are both built on it.
//
// Errors: the broker's error replies come back with the broker's code and
// message and leave the channel usable. Transport failures (kUnavailable) and
// replies that break the protocol (kProtocol) close the channel: broken()
// turns true and every later call fails at once. Not thread-safe: the owner
// serializes calls.
#ifndef MODELPOOL_CLIENTLIB_SRC_CHANNEL_HPP_
#define MODELPOOL_CLIENTLIB_SRC_CHANNEL_HPP_

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "clientlib/src/unix_socket.hpp"
#include "shm/protocol/frame.hpp"
#include "shm/status.hpp"

namespace modelpool::detail {

class Channel {
 public:
  // Connects to `socket_path`. `timeout` bounds each send and each wait for
  // a reply; nullopt waits as long as the broker takes. `err_out` as in
  // connect_unix.
  static Result<Channel> open(const std::string& socket_path,
                              std::optional<std::chrono::milliseconds> timeout,
                              int* err_out = nullptr);

  // Sends {"op": op, "id": N, ...fields} and returns the reply's fields
  // without "id" and "ok".
  Result<nlohmann::json> call(std::string_view op, nlohmann::json fields);

  bool broken() const { return !fd_.valid(); }
  const std::string& socket_path() const { return path_; }

 private:
  Channel(std::string path, UniqueFd fd, std::optional<std::chrono::milliseconds> timeout)
      : path_(std::move(path)), fd_(std::move(fd)), timeout_(timeout) {}

  // Closes the channel and returns `code` with a message naming the socket.
  Status fail(ErrorCode code, const std::string& what);
  Result<std::string> read_frame();

  std::string path_;
  UniqueFd fd_;
  std::optional<std::chrono::milliseconds> timeout_;
  proto::FrameDecoder decoder_;
  std::uint64_t next_id_ = 1;
};

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_CHANNEL_HPP_
