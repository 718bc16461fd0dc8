// File: broker/segment_home.cc
//
// The choice of segment_home.hpp: use a huge tmpfs already mounted at the
// pool's directory, mount one, or fall back to /dev/shm with the reason.
#include "broker/segment_home.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "broker/run_dir.hpp"
#include "broker/store/mount_info.hpp"
#include "broker/system_info.hpp"
#include "shm/layout/segment_layout.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {
namespace {

// The source name of the mounts the broker makes: how a later run knows a
// mount as one of its own (to grow it, and to unmount it once empty).
constexpr char kOwnSource[] = "modelpoold";
constexpr std::uint64_t kHugePage = 2ULL << 20;
constexpr unsigned long kMountFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

using Level = spdlog::level::level_enum;

// What was decided: the tmpfs is used, or why not (logged at `level`).
struct Choice {
  bool used = false;
  bool ours = false;  // mounted by a modelpoold: unmounted when empty
  bool created_dir = false;
  Level level = Level::warn;
  std::string why;
};

Choice fall_back(Level level, std::string why) {
  Choice c;
  c.level = level;
  c.why = std::move(why);
  return c;
}

std::string sys_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  std::string proc_path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

int open_dir(const std::string& dir) {
  return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The broker keeps its segment only where nobody else may add, remove or
// replace files: a directory of its own user, not writable by group or others.
bool owned_and_closed(const struct stat& st) {
  return st.st_uid == ::geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

std::string not_ours(const std::string& dir, const struct stat& st) {
  return dir + " belongs to uid " + std::to_string(st.st_uid) + " with mode " +
         mode_text(st.st_mode) + "; the segment goes only where the broker's own user (uid " +
         std::to_string(::geteuid()) + ") alone may write";
}

// size= for a mount of the pool's own: the budget (or the default one,
// 70% of MemAvailable, as decide_budget takes it), the segment's header and
// catalog, and room for MemAvailable to move between here and then.
std::uint64_t mount_bytes(const Config& c) {
  const std::uint64_t budget =
      c.policy.budget != 0 ? c.policy.budget : read_meminfo().available / 10 * 7;
  const std::uint64_t front =
      layout::compute_geometry(c.catalog_capacity, kHugePage, kHugePage).data_offset;
  const std::uint64_t slack = 64ULL << 20;
  return (budget + front + slack + kHugePage - 1) / kHugePage * kHugePage;
}

// A tmpfs of an earlier run of ours is grown (remount) when this run's
// budget needs more than its size=; a failure is left to the budget check.
void grow_if_needed(const Config& c, const std::string& dir, const Fd& fd) {
  struct statvfs vfs {};
  if (::fstatvfs(fd.get(), &vfs) != 0) return;
  const std::uint64_t have = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  const std::uint64_t need = mount_bytes(c);
  if (have >= need) return;
  const std::string opts = "size=" + std::to_string(need);
  if (::mount(nullptr, fd.proc_path().c_str(), nullptr, MS_REMOUNT | kMountFlags, opts.c_str()) !=
      0) {
    spdlog::warn("cannot grow the segment's tmpfs {} to {}: {}", dir, units::format_bytes(need),
                 std::strerror(errno));
    return;
  }
  spdlog::info("grew the segment's tmpfs {} from {} to {}", dir, units::format_bytes(have),
               units::format_bytes(need));
}

// `dir` is a mount point: used when it is a huge tmpfs of this user's.
Choice use_mounted(const Config& c, const std::string& dir, const Fd& fd, const struct stat& st) {
  const MountEntry m = mount_of(st.st_dev);
  if (!m.found || m.fstype != "tmpfs") {
    return fall_back(Level::warn, dir + " is a " + (m.found ? m.fstype : "non-tmpfs") +
                                      " mount, not a tmpfs (give it as --segment-dir to use it "
                                      "as it is)");
  }
  if (tmpfs_huge_option(m.options).empty() && shmem_enabled() != "force") {
    return fall_back(Level::warn, dir +
                                      " is a tmpfs without huge=within_size or huge=always "
                                      "(its options: " +
                                      m.options + ")");
  }
  if (!owned_and_closed(st)) return fall_back(Level::warn, not_ours(dir, st));
  Choice ch;
  ch.used = true;
  ch.ours = m.source == kOwnSource && may_mount();
  if (ch.ours) grow_if_needed(c, dir, fd);
  return ch;
}

// Mounts the pool's tmpfs on `dir`, which exists: through a descriptor of
// the directory judged, so a path swapped meanwhile is never mounted over.
// "" when mounted, else why not.
std::string mount_on(const Config& c, const std::string& dir) {
  const Fd fd(open_dir(dir));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
    return sys_text("cannot open " + dir + " (never a symlink)", errno);
  }
  if (!owned_and_closed(st)) return not_ours(dir, st);
  auto gid = worker_group(c);
  const gid_t group = gid.ok() && *gid != static_cast<gid_t>(-1) ? *gid : ::getegid();
  const std::uint64_t size = mount_bytes(c);
  const std::string opts = "size=" + std::to_string(size) +
                           ",huge=within_size,mode=0750,uid=" + std::to_string(::geteuid()) +
                           ",gid=" + std::to_string(group);
  if (::mount(kOwnSource, fd.proc_path().c_str(), "tmpfs", kMountFlags, opts.c_str()) != 0) {
    return sys_text("mounting a tmpfs on " + dir + " failed", errno);
  }
  spdlog::info("mounted a tmpfs for the segment on {} (huge=within_size, size {})", dir,
               units::format_bytes(size));
  return {};
}

// The kernel may accept a mount and drop an option: "" when `dir` is our
// tmpfs with huge=within_size, else what mountinfo shows.
std::string kept_options(const std::string& dir) {
  const Fd root(open_dir(dir));
  struct stat st {};
  const MountEntry m =
      root.get() >= 0 && ::fstat(root.get(), &st) == 0 ? mount_of(st.st_dev) : MountEntry{};
  if (m.fstype == "tmpfs" && m.source == kOwnSource &&
      tmpfs_huge_option(m.options) == "within_size") {
    return {};
  }
  return m.found ? m.options : "mount not found";
}

// No mount at `dir`: mounts a tmpfs there when the broker may.
Choice mount_fresh(const Config& c, const std::string& dir, bool automatic) {
  if (!may_mount()) {
    if (automatic) {
      return fall_back(Level::info,
                       "the broker may not mount a tmpfs of its own (it runs without root's "
                       "CAP_SYS_ADMIN)");
    }
    return fall_back(Level::warn, dir +
                                      " is not a mount point and the broker may not mount one "
                                      "there (no CAP_SYS_ADMIN); is its .mount unit active?");
  }
  struct stat parent {};
  if (::stat(std::filesystem::path(dir).parent_path().c_str(), &parent) != 0) {
    return fall_back(Level::warn, sys_text("cannot stat the directory above " + dir, errno));
  }
  if (sandboxed_mount_namespace(parent.st_dev)) {
    return fall_back(Level::warn,
                     "the broker runs in a mount namespace of its own (a container's or a "
                     "service sandbox's), where a tmpfs it mounts would be hidden from workers");
  }
  const bool created = ::mkdir(dir.c_str(), 0700) == 0;
  if (!created && errno != EEXIST) return fall_back(Level::warn, sys_text("mkdir " + dir, errno));
  if (std::string why = mount_on(c, dir); !why.empty()) {
    if (created) ::rmdir(dir.c_str());
    return fall_back(Level::warn, why);
  }
  if (std::string options = kept_options(dir); !options.empty()) {
    ::umount2(dir.c_str(), UMOUNT_NOFOLLOW);
    if (created) ::rmdir(dir.c_str());
    return fall_back(Level::warn, "the kernel did not keep huge=within_size on " + dir +
                                      " (options: " + options + "); unmounted it again");
  }
  Choice ch;
  ch.used = ch.ours = true;
  ch.created_dir = created;
  return ch;
}

Choice choose(const Config& c, const std::string& dir, bool automatic) {
  const Level quiet = automatic ? Level::info : Level::warn;
  const std::string thp = shmem_enabled();
  if (thp.empty()) {
    return fall_back(quiet, "this kernel has no transparent huge pages for tmpfs");
  }
  if (thp == "deny") {
    return fall_back(quiet, "huge pages on tmpfs are denied (" +
                                std::string("/sys/kernel/mm/transparent_hugepage/shmem_enabled") +
                                " is deny)");
  }
  const Fd fd(open_dir(dir));
  if (fd.get() < 0) {
    if (errno == ENOENT) return mount_fresh(c, dir, automatic);
    return fall_back(Level::warn, sys_text("cannot open " + dir + " (never a symlink)", errno));
  }
  struct stat st {
  }, up{};
  if (::fstat(fd.get(), &st) != 0 || ::fstatat(fd.get(), "..", &up, 0) != 0) {
    return fall_back(Level::warn, sys_text("cannot stat " + dir, errno));
  }
  if (st.st_dev != up.st_dev) return use_mounted(c, dir, fd, st);
  return mount_fresh(c, dir, automatic);  // e.g. the empty directory of an earlier run
}

bool is_empty_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool empty = true;
  while (const dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

}  // namespace

Result<std::unique_ptr<SegmentHome>> SegmentHome::prepare(Config* config) {
  std::unique_ptr<SegmentHome> home(new SegmentHome);
  if (!config->segment_dir.empty() || config->huge_tmpfs == "no") return home;
  const bool automatic = config->huge_tmpfs == "auto";
  if (!automatic && (config->huge_tmpfs.empty() || config->huge_tmpfs[0] != '/')) {
    return error(
        ErrorCode::kBadRequest,
        "--huge-tmpfs: want auto, no or an absolute directory, not \"" + config->huge_tmpfs + "\"");
  }
  namespace fs = std::filesystem;
  std::string dir = automatic ? (fs::absolute(config->run_dir) / (config->pool + ".tmpfs")).string()
                              : config->huge_tmpfs;
  dir = fs::path(dir).lexically_normal().string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const Choice ch = choose(*config, dir, automatic);
  if (!ch.used) {
    spdlog::log(ch.level,
                "segment in /dev/shm, not on a huge-page tmpfs: {} (docs/hugepages.md; "
                "--huge-tmpfs no skips this)",
                ch.why);
    return home;
  }
  home->dir_ = dir;
  home->unmount_when_empty_ = ch.ours;
  home->remove_dir_ = ch.ours && (automatic || ch.created_dir);
  config->segment_dir = dir;
  return home;
}

SegmentHome::~SegmentHome() {
  if (!unmount_when_empty_ || !is_empty_dir(dir_)) return;  // a kept segment keeps its mount
  if (::umount2(dir_.c_str(), UMOUNT_NOFOLLOW) != 0) {
    spdlog::info("the segment's tmpfs {} stays mounted: {}", dir_, std::strerror(errno));
    return;
  }
  spdlog::info("unmounted the segment's tmpfs {}", dir_);
  if (remove_dir_) ::rmdir(dir_.c_str());
}

}  // namespace modelpool::broker
