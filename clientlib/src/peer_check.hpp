// File: clientlib/src/peer_check.hpp
//
// A worker checks who it talks to before it maps anything: the broker at
// the other end of the worker socket must run as this process's user, as
// root, or as the user $MODELPOOL_BROKER_UID names (a uid or a user name);
// and the segment `hello` points at must be a regular file owned by that
// broker's user (or root) that group and others cannot write. Otherwise a
// kForbidden error naming both users, and nothing mapped.
#ifndef MODELPOOL_CLIENTLIB_SRC_PEER_CHECK_HPP_
#define MODELPOOL_CLIENTLIB_SRC_PEER_CHECK_HPP_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "clientlib/src/unix_socket.hpp"
#include "shm/status.hpp"

namespace modelpool::detail {

// The broker's uid from SO_PEERCRED of the connected socket `fd`, once it
// passed the check above. kForbidden on a stranger; kBadRequest when
// $MODELPOOL_BROKER_UID names no user.
Result<uid_t> check_broker_peer(int fd, const std::string& socket_path);

// Opens the segment O_RDONLY|O_NOFOLLOW|O_CLOEXEC and checks the fstat of
// what it opened against `broker_uid`; `*st` receives that fstat.
// kUnavailable when it cannot be opened, kForbidden when it is refused.
Result<UniqueFd> open_broker_segment(const std::string& path, uid_t broker_uid, struct stat* st);

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_PEER_CHECK_HPP_
