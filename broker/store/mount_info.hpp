// File: broker/store/mount_info.hpp
//
// What the kernel says about mounts and huge pages, for choosing where the
// segment lives (segment_home.hpp): the /proc/self/mountinfo entry of a
// device, the huge= option of a tmpfs, the tmpfs huge-page switch
// (/sys/kernel/mm/transparent_hugepage/shmem_enabled), whether this process
// may mount, and whether a mount it makes is one other processes see. Pure
// reads; thread-safe.
#ifndef MODELPOOL_BROKER_STORE_MOUNT_INFO_HPP_
#define MODELPOOL_BROKER_STORE_MOUNT_INFO_HPP_

#include <sys/types.h>

#include <string>
#include <string_view>

namespace modelpool::broker {

// One line of /proc/self/mountinfo: the propagation tags and the fields
// after " - ".
struct MountEntry {
  bool found = false;
  std::string tags;                     // e.g. "shared:1 master:2", "" when private
  std::string fstype, source, options;  // options: the super options
};

// The topmost (last listed) mount of device `dev`; found = false if none.
MountEntry mount_of(dev_t dev);

// "always" or "within_size" when the tmpfs super `options` ask for huge
// pages on every write; "" otherwise (never, advise, or no huge=).
std::string tmpfs_huge_option(std::string_view options);

// The word in brackets of shmem_enabled ("never", "deny", "force", ...), or
// "" when the kernel has no transparent huge pages for tmpfs.
std::string shmem_enabled();

// True when the effective capabilities hold CAP_SYS_ADMIN (mount(2)).
bool may_mount();

// True when a mount made here, below the mount of device `under`, would be
// hidden from other processes: this process is in another mount namespace
// than pid 1 (a service's sandbox, an `unshare -m`). Where pid 1's namespace
// cannot be read (no ptrace access to it), a slave mount (tagged master:
// but not shared:, as systemd's sandboxes have) says the same.
bool sandboxed_mount_namespace(dev_t under);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_MOUNT_INFO_HPP_
