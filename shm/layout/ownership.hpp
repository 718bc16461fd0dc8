// File: shm/layout/ownership.hpp
//
// Who owns a pool's files, in the words the broker and the client use when
// they refuse one: "alice (uid 1000)", "owned by alice (uid 1000), mode
// 0666". And the one rule both sides apply to what they opened (checked on
// the fstat of the descriptor, never on a path): a regular file or
// directory of the expected kind, owned by the expected user, and not
// writable by group or others.
#ifndef MODELPOOL_SHM_LAYOUT_OWNERSHIP_HPP_
#define MODELPOOL_SHM_LAYOUT_OWNERSHIP_HPP_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "shm/status.hpp"

namespace modelpool::layout {

// "alice (uid 1000)", or "uid 1000" when the user has no name.
std::string describe_user(uid_t uid);
// "owned by alice (uid 1000), mode 0666".
std::string describe_owner_and_mode(const struct stat& st);

// kForbidden naming `path`, its owner and mode unless `st` is of type
// `type` (S_IFREG, S_IFDIR, ...), owned by `owner` and not group/other-writable.
// `what` names the file ("segment", "run directory"); `hint` ends the message.
Status check_owned(const struct stat& st, mode_t type, uid_t owner, const std::string& what,
                   const std::string& path, const std::string& hint);

}  // namespace modelpool::layout

#endif  // MODELPOOL_SHM_LAYOUT_OWNERSHIP_HPP_
