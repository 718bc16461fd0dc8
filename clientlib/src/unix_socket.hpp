// File: clientlib/src/unix_socket.hpp
//
// The client's blocking Unix-socket plumbing: an owning fd, connect to a
// socket path with an optional send/receive timeout, and whole-buffer send.
// Failures come back as kUnavailable Statuses whose messages name the socket
// path; never throws. A UniqueFd is owned by one object (not thread-safe).
#ifndef MODELPOOL_CLIENTLIB_SRC_UNIX_SOCKET_HPP_
#define MODELPOOL_CLIENTLIB_SRC_UNIX_SOCKET_HPP_

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "shm/status.hpp"

namespace modelpool::detail {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  void reset();

 private:
  int fd_ = -1;
};

// strerror(err), thread-safely.
std::string errno_text(int err);

// "cannot connect to modelpool broker at PATH: <strerror(err)>".
std::string connect_error_message(const std::string& path, int err);

// A connected, blocking AF_UNIX stream socket (SOCK_CLOEXEC). With a
// timeout, sends and receives fail with EAGAIN after it. On failure, sets
// `*err_out` (if given) to the errno of the failed step.
Result<UniqueFd> connect_unix(const std::string& path,
                              std::optional<std::chrono::milliseconds> timeout,
                              int* err_out = nullptr);

// Sends all of `data` (MSG_NOSIGNAL, retries EINTR). Returns 0 or an errno.
int send_all(int fd, std::string_view data);

// One recv into `buf` (retries EINTR): bytes read, 0 at end of stream, or
// -errno. A file descriptor passed with the bytes (SCM_RIGHTS) lands in
// `*passed` (O_CLOEXEC) when that is empty; any other is closed.
long recv_some(int fd, char* buf, std::size_t n, UniqueFd* passed);

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_UNIX_SOCKET_HPP_
