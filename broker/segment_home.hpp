// File: broker/segment_home.hpp
//
// Where the segment lives when the operator did not say (no --segment-dir):
// on a tmpfs of the pool's own mounted with huge=within_size, so that a
// worker maps a model 2 MiB at a time instead of 4 KiB (docs/hugepages.md),
// or in /dev/shm when that cannot be had.
//
// --huge-tmpfs auto (the default) means RUN_DIR/POOL.tmpfs; --huge-tmpfs DIR
// means DIR (the shipped systemd unit's .mount, say). A huge tmpfs already
// mounted there, belonging to the broker's user and writable by nobody
// else, is used as it is (a previous run's, whose segment is then adopted).
// Otherwise the broker mounts one when it may: root (CAP_SYS_ADMIN) in the
// mount namespace of pid 1, so that workers elsewhere see the mount at the
// path the hello reply gives. The mount is sized for the budget plus the
// segment's header and catalog (tmpfs is sparse: that is a limit, not a
// reservation). When none of this works -- not root, huge pages on tmpfs
// denied, a sandboxed namespace, a failed mount, a kernel that dropped the
// huge= option, something foreign at the path -- the segment goes to
// /dev/shm and one log line says why. --huge-tmpfs no is /dev/shm, silently.
//
// The directory is opened with O_NOFOLLOW and judged by fstat of what was
// opened, and the mount is made through that descriptor, so a symlink or a
// directory another user planted is never mounted over or used.
#ifndef MODELPOOL_BROKER_SEGMENT_HOME_HPP_
#define MODELPOOL_BROKER_SEGMENT_HOME_HPP_

#include <memory>
#include <string>

#include "broker/config.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

class SegmentHome {
 public:
  // Decides, mounting when needed, and sets config->segment_dir to the
  // tmpfs when one is used (it stays "" for /dev/shm). Call after the pool's
  // lock is held (the run directory is then checked) and before the budget
  // is decided (it reads the mount's free space). Errors: kBadRequest for a
  // --huge-tmpfs that is not auto, no or an absolute path; every other
  // problem is a fallback to /dev/shm, not an error.
  static Result<std::unique_ptr<SegmentHome>> prepare(Config* config);

  // Unmounts a tmpfs this broker mounted (now, or in an earlier run) once it
  // holds nothing: the segment was removed (--remove-on-exit, or a failed
  // start's fresh segment). A kept segment keeps its mount for the restart,
  // which adopts it. RUN_DIR/POOL.tmpfs is then removed too.
  ~SegmentHome();
  SegmentHome(const SegmentHome&) = delete;
  SegmentHome& operator=(const SegmentHome&) = delete;

  // "" for /dev/shm.
  const std::string& dir() const { return dir_; }

 private:
  SegmentHome() = default;
  std::string dir_;
  bool unmount_when_empty_ = false;
  bool remove_dir_ = false;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SEGMENT_HOME_HPP_
