// File: tests/support/scratch_mount.hpp
//
// A scratch filesystem for tests, set up and torn down by
// scripts/hugepages.sh, the one place that knows how (mount options, huge
// page bookkeeping, checking huge=always, lazy detach, giving pages back):
// its factories run `up`, its destructor `down --force`. Each mount
// gets a fresh directory under /tmp with the script's state beside it, so
// tests running at the same time do not share state. The script is run
// with posix_spawn, its arguments passed as they are (no shell command line).
#ifndef MODELPOOL_TESTS_SUPPORT_SCRATCH_MOUNT_HPP_
#define MODELPOOL_TESTS_SUPPORT_SCRATCH_MOUNT_HPP_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace modelpool::testing {

class ScratchMount {
 public:
  // The factories return nullptr with the script's reason in *why when `up`
  // fails: exit status 3 (this host cannot: not root, huge pages unavailable
  // or too few) or any other failure, which *why then names with its status.

  // A tmpfs of size `bytes`: huge=always (and the kernel kept it), or with
  // `huge` false a plain one (huge=never).
  static std::unique_ptr<ScratchMount> tmpfs(std::uint64_t bytes, bool huge, std::string* why);
  // A hugetlbfs with pagesize=2M and size=`bytes` (0: no size= limit), after
  // `pages` 2 MiB pages were added to the kernel's pool for it.
  static std::unique_ptr<ScratchMount> hugetlbfs(std::uint64_t bytes, std::uint64_t pages,
                                                 std::string* why);
  // `down --force`: unmounts (detaches a mount still in use), gives back the
  // huge pages `up` added, removes the directories. A failure is reported on
  // stderr; the state is then left in place for a look by hand.
  ~ScratchMount();
  ScratchMount(const ScratchMount&) = delete;
  ScratchMount& operator=(const ScratchMount&) = delete;

  const std::string& path() const { return dir_; }

 private:
  explicit ScratchMount(std::string root);
  // `hugepages.sh up --kind KIND --dir DIR ARGS...` on a fresh directory.
  static std::unique_ptr<ScratchMount> up(const std::string& kind, std::vector<std::string> args,
                                          std::string* why);
  std::string root_;   // fresh temp directory holding the two below
  std::string dir_;    // root_/mnt, the mount point (made and removed by the script)
  std::string state_;  // root_/state, $MODELPOOL_HUGEPAGES_STATE_DIR
};

// What a run of the script returned: its exit status (128 + signal when it
// was killed) and its stdout and stderr together.
struct ScriptResult {
  int status = 0;
  std::string output;
};

// Runs `bash scripts/hugepages.sh ARGS...` with $MODELPOOL_HUGEPAGES_STATE_DIR
// set to `state_dir`; waits for it.
ScriptResult run_hugepages_sh(const std::string& state_dir, const std::vector<std::string>& args);

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_SUPPORT_SCRATCH_MOUNT_HPP_
