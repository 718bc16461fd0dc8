// File: clientlib/src/peer_check.cc
#include "clientlib/src/peer_check.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <vector>

#include "shm/layout/ownership.hpp"

namespace modelpool::detail {
namespace {

// $MODELPOOL_BROKER_UID: a uid, or a user name. Read at each connect, so a
// reconnect sees what the environment says then.
Result<std::optional<uid_t>> expected_broker_uid() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): only racy against setenv, as everywhere
  const char* v = std::getenv("MODELPOOL_BROKER_UID");
  if (v == nullptr || *v == '\0') return std::optional<uid_t>();
  char* end = nullptr;
  errno = 0;
  const unsigned long n = std::strtoul(v, &end, 10);
  if (errno == 0 && *end == '\0' && n <= static_cast<unsigned long>(static_cast<uid_t>(-2))) {
    return std::optional<uid_t>(static_cast<uid_t>(n));
  }
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(v, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return std::optional<uid_t>(found->pw_uid);
  }
  return error(ErrorCode::kBadRequest,
               std::string("MODELPOOL_BROKER_UID=") + v + " is neither a uid nor a user name");
}

}  // namespace

Result<uid_t> check_broker_peer(int fd, const std::string& socket_path) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    const int err = errno;
    return error(ErrorCode::kUnavailable,
                 "cannot tell who serves " + socket_path + " (SO_PEERCRED): " + errno_text(err));
  }
  auto expected = expected_broker_uid();
  if (!expected.ok()) return expected.status();
  const uid_t me = ::geteuid();
  if (cred.uid == me || cred.uid == 0 || (*expected && **expected == cred.uid)) return cred.uid;
  std::string msg = "refusing the broker at " + socket_path + ": it runs as " +
                    layout::describe_user(cred.uid) + ", not as this worker's user " +
                    layout::describe_user(me) + " or root";
  if (*expected) msg += " or the expected " + layout::describe_user(**expected);
  msg += " (set MODELPOOL_BROKER_UID=" + std::to_string(cred.uid) +
         " if this is the broker you expect)";
  return error(ErrorCode::kForbidden, std::move(msg));
}

Result<UniqueFd> open_broker_segment(const std::string& path, uid_t broker_uid, struct stat* st) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid() || ::fstat(fd.get(), st) != 0) {
    const int err = errno;
    return error(err == ELOOP ? ErrorCode::kForbidden : ErrorCode::kUnavailable,
                 "cannot open the pool's segment " + path + ": " + errno_text(err));
  }
  if (st->st_uid != broker_uid && st->st_uid != 0) {
    return error(ErrorCode::kForbidden, "refusing the pool's segment " + path + " (" +
                                            layout::describe_owner_and_mode(*st) +
                                            "): the broker runs as " +
                                            layout::describe_user(broker_uid) +
                                            ", and only its user or root may own what it serves");
  }
  if (Status s = layout::check_owned(*st, S_IFREG, st->st_uid, "the pool's segment", path,
                                     "another user could change the bytes it serves");
      !s.ok()) {
    return s;
  }
  return fd;
}

}  // namespace modelpool::detail
