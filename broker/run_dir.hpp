// File: broker/run_dir.hpp
//
// The run directory and the pool's lock, taken without trusting anything
// another user could have planted there: the directory is opened
// O_DIRECTORY|O_NOFOLLOW and judged by the fstat of that descriptor, the
// lock file is opened relative to it with O_NOFOLLOW (so a symlink is never
// followed, and root never truncates its target) and judged the same way.
// Refusals are kForbidden messages naming the path, its owner and its mode.
#ifndef MODELPOOL_BROKER_RUN_DIR_HPP_
#define MODELPOOL_BROKER_RUN_DIR_HPP_

#include <sys/types.h>

#include <memory>
#include <string>

#include "broker/config.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// Holds RUN_DIR/POOL.lock (flock) for the broker's lifetime. Unless
// keep() was called, the destructor removes what this start created: the
// lock file, and the run directory when it is empty (a failed start leaves
// nothing behind). A lock file or directory that existed before is kept.
class PoolLock {
 public:
  PoolLock(int dir_fd, int fd, std::string run_dir, std::string name, bool created,
           bool dir_created)
      : dir_fd_(dir_fd),
        fd_(fd),
        run_dir_(std::move(run_dir)),
        name_(std::move(name)),
        created_(created),
        dir_created_(dir_created) {}
  PoolLock(const PoolLock&) = delete;
  PoolLock& operator=(const PoolLock&) = delete;
  ~PoolLock();
  void keep() { keep_ = true; }  // the broker started: leave the files in place

 private:
  int dir_fd_;
  int fd_;
  std::string run_dir_, name_;
  bool created_, dir_created_;
  bool keep_ = false;
};

// The gid of --group, or (gid_t)-1 without one; an unknown group is an error.
Result<gid_t> worker_group(const Config& config);

// Creates the run directory (0700 at mkdir, then opened to --group, see
// run_dir.cc) or checks the existing one (owned by this user or root; not
// writable by group or others unless sticky, as /tmp), then takes the lock;
// fails when another live broker serves the pool (naming its pid).
Result<std::unique_ptr<PoolLock>> acquire_pool_lock(const Config& config);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_RUN_DIR_HPP_
