// File: broker/server/session.cc
#include "broker/server/session.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <iterator>

#include "broker/server/log_text.hpp"
#include "shm/protocol/messages.hpp"

namespace modelpool::broker {

namespace asio = boost::asio;

Session::Session(asio::local::stream_protocol::socket socket, std::uint64_t id, bool admin,
                 std::size_t max_outbound, FrameHandler on_frame, CloseHandler on_close)
    : socket_(std::move(socket)),
      id_(id),
      admin_(admin),
      max_outbound_(max_outbound),
      on_frame_(std::move(on_frame)),
      on_close_(std::move(on_close)),
      flush_deadline_(socket_.get_executor()) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    pid_ = cred.pid;
    uid_ = cred.uid;
  }
}

std::string Session::describe() const {
  return "client " + std::to_string(id_) + " (pid " + std::to_string(pid_) + ", uid " +
         std::to_string(uid_) + (admin_ ? ", admin)" : ")");
}

void Session::start() { read_more(); }

void Session::read_more() {
  if (closed_ || closing_) return;
  socket_.async_read_some(asio::buffer(read_buf_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            // Once closing, input is ignored and the end of
                            // it is our own shutdown: the flush closes.
                            if (self->closing_) return;
                            if (ec) {
                              self->close(nullptr);
                              return;
                            }
                            self->on_read(n);
                          });
}

void Session::on_read(std::size_t n) {
  decoder_.feed(read_buf_.data(), n);
  for (;;) {
    auto frame = decoder_.next_view();  // valid until the next feed
    if (!frame.ok()) {
      spdlog::warn("{} sent a bad frame: {}; closing", describe(),
                   log_text(frame.status().message()));
      send(proto::encode_error(nullptr, frame.status()));
      close_after_flush();
      return;
    }
    if (!frame->has_value()) break;
    on_frame_(shared_from_this(), **frame);
    if (closed_ || closing_) return;
  }
  read_more();
}

void Session::send(std::string payload) {
  if (closed_) return;
  if (payload.size() > proto::kMaxFrame) {
    payload =
        proto::encode_error(nullptr, error(ErrorCode::kInternal, "reply exceeds the frame limit"));
  }
  if (writing_ || closing_ || !outbound_.empty()) {  // in order; a closing one closes later
    queue(proto::encode_frame(payload));
    return;
  }
  // Nothing queued: write now, from a buffer kept for it, with no
  // asynchronous operation to allocate or complete. What the socket does not
  // take now is queued from where it stopped.
  frame_.clear();
  proto::append_frame(frame_, payload);
  ssize_t n = 0;
  do {
    n = ::send(socket_.native_handle(), frame_.data(), frame_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  // On an error the asynchronous write meets it again and closes the session
  // from its handler, never from inside this caller.
  const auto sent = static_cast<std::size_t>(std::max<ssize_t>(n, 0));
  if (sent < frame_.size()) queue(frame_.substr(sent));
}

void Session::queue(std::string frame) {
  outbound_bytes_ += frame.size();
  outbound_.push_back(std::move(frame));
  if (outbound_bytes_ > max_outbound_) {
    spdlog::warn("{} does not read its replies ({} bytes queued); disconnecting", describe(),
                 outbound_bytes_);
    close(nullptr);
    return;
  }
  write_more();
}

void Session::reply_ok(const nlohmann::json& id, nlohmann::json fields) {
  send(proto::encode_ok(id, std::move(fields)));
}

void Session::reply_error(const nlohmann::json& id, const Status& status) {
  send(proto::encode_error(id, status));
}

bool Session::reply_ok_with_ring(const nlohmann::json& id, nlohmann::json fields, bool wake) {
  if (ring_ || closed_ || closing_ || writing_ || !outbound_.empty()) return false;
  int fd = -1;
  auto ring = proto::ReleaseRing::create(&fd);
  if (!ring.ok()) {
    spdlog::warn("{}: no release ring: {}", describe(), ring.status().message());
    return false;
  }
  ring->set_wake(wake);
  fields["release_ring"] = {{"slots", proto::kReleaseRingSlots},
                            {"bytes", proto::kReleaseRingBytes}};
  std::string frame = proto::encode_frame(proto::encode_ok(id, std::move(fields)));
  iovec iov{frame.data(), frame.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n = 0;
  do {
    n = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);  // the client has its own copy now, or none
  if (n < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) return false;  // nothing sent: a plain reply
    close(std::strerror(err));
    return true;
  }
  ring_ = std::move(ring).value();
  if (static_cast<std::size_t>(n) < frame.size()) {  // the rest goes the usual way
    frame.erase(0, static_cast<std::size_t>(n));
    queue(std::move(frame));
  }
  return true;
}

void Session::write_more() {
  if (writing_ || closed_) return;
  if (outbound_.empty()) {
    if (closing_) close(nullptr);
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(outbound_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (ec || self->closed_) {  // closed meanwhile: the queue is gone
                        self->close(nullptr);
                        return;
                      }
                      self->outbound_bytes_ -= self->outbound_.front().size();
                      self->outbound_.pop_front();
                      self->write_more();
                    });
}

void Session::close_after_flush() {
  if (closed_) return;
  closing_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_receive, ignored);
  if (!writing_ && outbound_.empty()) {
    close(nullptr);
    return;
  }
  flush_deadline_.expires_after(flush_grace_);
  flush_deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->close("replies still unread at the end of the flush grace");
  });
}

void Session::close(const char* why) {
  if (closed_) return;
  closed_ = true;
  if (why != nullptr) spdlog::warn("{}: {}; closing", describe(), why);
  boost::system::error_code ignored;
  socket_.close(ignored);
  flush_deadline_.cancel();
  // The reply being written stays until its handler runs: the write may
  // still point into it.
  outbound_.erase(writing_ ? std::next(outbound_.begin()) : outbound_.begin(), outbound_.end());
  outbound_bytes_ = 0;
  if (on_close_) {
    auto handler = std::move(on_close_);
    on_close_ = nullptr;
    handler(*this);
  }
}

}  // namespace modelpool::broker
