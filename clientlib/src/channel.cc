// File: clientlib/src/channel.cc
#include "clientlib/src/channel.hpp"

#include <cerrno>
#include <utility>

#include "shm/protocol/messages.hpp"

namespace modelpool::detail {

Result<Channel> Channel::open(const std::string& socket_path,
                              std::optional<std::chrono::milliseconds> timeout, int* err_out) {
  auto fd = connect_unix(socket_path, timeout, err_out);
  if (!fd.ok()) return fd.status();
  return Channel(socket_path, std::move(fd).value(), timeout);
}

Status Channel::fail(ErrorCode code, const std::string& what) {
  fd_.reset();
  decoder_ = proto::FrameDecoder();
  return error(code, "modelpool broker at " + path_ + ": " + what);
}

Result<std::string> Channel::read_frame() {
  char buf[16 * 1024];
  for (;;) {
    auto next = decoder_.next();
    if (!next.ok()) return fail(ErrorCode::kProtocol, next.status().message());
    if (next->has_value()) return std::move(**next);
    const long n = recv_some(fd_.get(), buf, sizeof buf);
    if (n == 0) return fail(ErrorCode::kUnavailable, "connection closed by the broker");
    if (n == -EAGAIN || n == -EWOULDBLOCK) {
      return fail(ErrorCode::kUnavailable,
                  "no reply within " + std::to_string(timeout_ ? timeout_->count() : 0) + " ms");
    }
    if (n < 0) {
      return fail(ErrorCode::kUnavailable,
                  std::string("receive failed: ") + errno_text(static_cast<int>(-n)));
    }
    decoder_.feed(buf, static_cast<std::size_t>(n));
  }
}

Result<nlohmann::json> Channel::call(std::string_view op, nlohmann::json fields) {
  if (broken()) return error(ErrorCode::kUnavailable, "connection to " + path_ + " is closed");
  const std::uint64_t id = next_id_++;
  const std::string payload = proto::encode_request(op, nlohmann::json(id), std::move(fields));
  if (payload.size() > proto::kMaxFrame) {
    // Nothing was sent: the channel stays usable.
    return error(ErrorCode::kBadRequest, "request of " + std::to_string(payload.size()) +
                                             " bytes exceeds the protocol's frame limit");
  }
  if (int err = send_all(fd_.get(), proto::encode_frame(payload)); err != 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) return fail(ErrorCode::kUnavailable, "send timed out");
    return fail(ErrorCode::kUnavailable, std::string("send failed: ") + errno_text(err));
  }
  auto frame = read_frame();
  if (!frame.ok()) return frame.status();
  auto reply = proto::decode_reply(*frame);
  if (!reply.ok()) {
    // A broker error reply keeps the conversation in step; a malformed one
    // does not.
    if (reply.status().code() == ErrorCode::kProtocol) {
      return fail(ErrorCode::kProtocol, reply.status().message());
    }
    return reply.status();
  }
  const nlohmann::json& rid = reply->id;
  if (!rid.is_number_unsigned() || rid.get<std::uint64_t>() != id) {
    return fail(ErrorCode::kProtocol,
                "reply id " + rid.dump() + " does not match request id " + std::to_string(id));
  }
  nlohmann::json body = std::move(reply->body);
  body.erase("id");
  body.erase("ok");
  return body;
}

}  // namespace modelpool::detail
