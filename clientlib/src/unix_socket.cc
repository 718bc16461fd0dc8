// File: clientlib/src/unix_socket.cc
#include "clientlib/src/unix_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace modelpool::detail {
namespace {

// A blocking connect interrupted by a signal goes on asynchronously: wait
// for it to finish and fetch its result.
int finish_interrupted_connect(int fd) {
  pollfd p{fd, POLLOUT, 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, -1);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return errno;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

int set_timeout(int fd, std::chrono::milliseconds timeout) {
  const auto ms = timeout.count() < 1 ? 1 : timeout.count();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return errno;
  }
  return 0;
}

// strerror_r comes in two flavours: GNU returns the text, XSI an int.
[[maybe_unused]] const char* strerror_result(const char* text, const char* /*buf*/) { return text; }
[[maybe_unused]] const char* strerror_result(int rc, const char* buf) {
  return rc == 0 ? buf : "unknown error";
}

}  // namespace

std::string errno_text(int err) {
  char buf[256] = {};
  return strerror_result(::strerror_r(err, buf, sizeof buf), buf);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string connect_error_message(const std::string& path, int err) {
  return "cannot connect to modelpool broker at " + path + ": " + errno_text(err);
}

Result<UniqueFd> connect_unix(const std::string& path,
                              std::optional<std::chrono::milliseconds> timeout, int* err_out) {
  auto fail = [&](int err) {
    if (err_out != nullptr) *err_out = err;
    return error(ErrorCode::kUnavailable, connect_error_message(path, err));
  };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return fail(ENAMETOOLONG);
  std::memcpy(addr.sun_path, path.data(), path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail(errno);
  if (timeout) {
    if (int err = set_timeout(fd.get(), *timeout); err != 0) return fail(err);
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == EINTR) err = finish_interrupted_connect(fd.get());
    if (err != 0) return fail(err);
  }
  return fd;
}

int send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

long recv_some(int fd, char* buf, std::size_t n, UniqueFd* passed) {
  iovec iov{buf, n};
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t r = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -static_cast<long>(errno);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int got = -1;
        std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        if (!passed->valid()) {
          *passed = UniqueFd(got);
        } else {
          ::close(got);
        }
      }
    }
    return static_cast<long>(r);
  }
}

}  // namespace modelpool::detail
