// File: clientlib/src/channel.cc
#include "clientlib/src/channel.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "shm/protocol/messages.hpp"

namespace modelpool::detail {

Result<std::unique_ptr<Channel>> Channel::open(const std::string& socket_path,
                                               std::optional<std::chrono::milliseconds> timeout,
                                               int* err_out) {
  auto fd = connect_unix(socket_path, timeout, err_out);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<Channel>(new Channel(socket_path, std::move(fd).value(), timeout));
}

Status Channel::fail(ErrorCode code, const std::string& what) {
  if (!broken_.exchange(true, std::memory_order_acq_rel)) ::shutdown(fd_.get(), SHUT_RDWR);
  return error(code, "modelpool broker at " + path_ + ": " + what);
}

Status Channel::send_request(const Encoder& encode, std::uint64_t* id) {
  std::lock_guard lock(send_mu_);
  if (broken()) return error(ErrorCode::kUnavailable, "connection to " + path_ + " is closed");
  std::string payload;
  try {
    payload = encode(next_id_);
  } catch (const nlohmann::json::exception& e) {
    // Nothing was sent: the channel stays usable.
    return error(ErrorCode::kBadRequest, std::string("request cannot be encoded: ") + e.what());
  }
  *id = next_id_++;
  if (payload.size() > proto::kMaxFrame) {
    return error(ErrorCode::kBadRequest, "request of " + std::to_string(payload.size()) +
                                             " bytes exceeds the protocol's frame limit");
  }
  out_.clear();  // keeps its capacity: no allocation per request
  proto::append_frame(out_, payload);
  if (int err = send_all(fd_.get(), out_); err != 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) return fail(ErrorCode::kUnavailable, "send timed out");
    return fail(ErrorCode::kUnavailable, std::string("send failed: ") + errno_text(err));
  }
  return {};
}

Result<std::string_view> Channel::read_frame_locked() {
  char buf[16 * 1024];
  for (;;) {
    auto next = decoder_.next_view();
    if (!next.ok()) return fail(ErrorCode::kProtocol, next.status().message());
    if (next->has_value()) return **next;
    if (broken()) return error(ErrorCode::kUnavailable, "connection to " + path_ + " is closed");
    const long n = recv_some(fd_.get(), buf, sizeof buf, &passed_fd_);
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

Result<Channel::Matched> Channel::read_reply_locked(std::uint64_t want) {
  auto frame = read_frame_locked();
  if (!frame.ok()) return frame.status();
  return match_reply_locked(*frame, want);
}

Result<Channel::Matched> Channel::match_reply_locked(std::string_view frame, std::uint64_t want) {
  auto flat = proto::parse_flat_reply(frame);
  if (!flat.ok()) return fail(ErrorCode::kProtocol, flat.status().message());
  if (flat->id != want) {
    // Replies come in request order, one per call: anything else is not a
    // reply to this call.
    const Status st = proto::flat_reply_status(*flat);
    if (st.code() == ErrorCode::kProtocol) return fail(ErrorCode::kProtocol, st.message());
    const std::string shown =
        flat->id ? std::to_string(*flat->id)
                 : std::string(flat->find("id") ? "(not an unsigned integer)" : "(none)");
    return fail(ErrorCode::kProtocol,
                "reply id " + shown + " does not match request id " + std::to_string(want));
  }
  return Matched{std::string(frame), std::move(flat).value()};
}

Status Channel::reply_status_locked(const proto::FlatReply& flat) {
  const Status st = proto::flat_reply_status(flat);
  if (st.code() == ErrorCode::kProtocol) return fail(ErrorCode::kProtocol, st.message());
  return st;
}

Result<proto::AcquireReply> Channel::call_acquire(const Encoder& encode) {
  std::lock_guard lock(recv_mu_);
  std::uint64_t id = 0;
  if (Status s = send_request(encode, &id); !s.ok()) return s;
  auto frame = read_frame_locked();
  if (!frame.ok()) return frame.status();
  auto matched = match_reply_locked(*frame, id);
  if (!matched.ok()) return matched.status();
  if (Status st = reply_status_locked(matched->flat); !st.ok()) return st;
  auto r = proto::acquire_reply_from(matched->flat);
  // A malformed list of files breaks the channel, as it did when the DOM read it.
  if (!r.ok() && matched->flat.find("files") != nullptr) {
    return fail(ErrorCode::kProtocol, r.status().message());
  }
  return r;
}

Result<nlohmann::json> Channel::call(std::string_view op, nlohmann::json fields) {
  std::lock_guard lock(recv_mu_);
  std::uint64_t id = 0;
  const Encoder encode = [&](std::uint64_t n) {
    return proto::encode_request(op, nlohmann::json(n), std::move(fields));
  };
  if (Status s = send_request(encode, &id); !s.ok()) return s;
  auto matched = read_reply_locked(id);
  if (!matched.ok()) return matched.status();
  auto reply = proto::decode_reply(matched->frame);
  if (!reply.ok()) {
    if (reply.status().code() == ErrorCode::kProtocol) {
      return fail(ErrorCode::kProtocol, reply.status().message());
    }
    return reply.status();
  }
  nlohmann::json body = std::move(reply->body);
  body.erase("id");
  body.erase("ok");
  return body;
}

Status Channel::notify(const Encoder& encode) {
  std::uint64_t id = 0;
  return send_request(encode, &id);
}

Status Channel::release(std::uint64_t handle) {
  bool flush = false;
  {
    std::lock_guard lock(ring_mu_);
    if (ring_ && ring_->push(handle)) {
      if (!ring_->wake_requested()) return {};
      flush = true;
    }
  }
  if (flush) {
    return notify([](std::uint64_t id) { return proto::encode_flush_request(id); });
  }
  return notify([handle](std::uint64_t id) {
    return proto::encode_release_request(id, proto::ReleaseRequest{handle, false});
  });
}

UniqueFd Channel::take_passed_fd() {
  std::lock_guard lock(recv_mu_);
  return std::move(passed_fd_);
}

void Channel::set_release_ring(proto::ReleaseRing ring) {
  std::lock_guard lock(ring_mu_);
  ring_ = std::move(ring);
}

}  // namespace modelpool::detail
