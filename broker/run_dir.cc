// File: broker/run_dir.cc
#include "broker/run_dir.hpp"

#include <fcntl.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "shm/layout/ownership.hpp"
#include "shm/layout/paths.hpp"

namespace modelpool::broker {

PoolLock::~PoolLock() {
  if (!keep_ && created_) {
    // Only the file this start created and still holds: the path may have
    // been taken over since (it cannot in a directory we trust, but check).
    struct stat mine {
    }, there{};
    if (::fstat(fd_, &mine) == 0 &&
        ::fstatat(dir_fd_, name_.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 &&
        mine.st_dev == there.st_dev && mine.st_ino == there.st_ino) {
      ::unlinkat(dir_fd_, name_.c_str(), 0);
    }
  }
  if (fd_ >= 0) ::close(fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  // rmdir removes only an empty directory; the sockets are gone by now.
  if (!keep_ && dir_created_) ::rmdir(run_dir_.c_str());
}

Result<gid_t> worker_group(const Config& config) {
  if (config.group.empty()) return static_cast<gid_t>(-1);
  const struct group* g = ::getgrnam(config.group.c_str());
  if (g == nullptr) {
    return error(ErrorCode::kBadRequest, "--group: no group named \"" + config.group + "\"");
  }
  return g->gr_gid;
}

namespace {

Status sys_error(const std::string& what, int err) {
  return error(ErrorCode::kInternal, what + ": " + std::strerror(err));
}

// A directory the broker creates must let the worker socket's users reach
// it whatever the umask: 0750 and the --group, else 0755 (the sockets' own
// modes decide who may connect). An existing one is never changed (it may
// be shared, like /tmp); a warning says when the group cannot enter it.
Status set_run_dir_access(const Config& config, int dir_fd, const struct stat& st, bool created) {
  auto gid = worker_group(config);
  if (!gid.ok()) return gid.status();
  if (created) {
    const mode_t mode = config.group.empty() ? 0755 : 0750;
    if (::fchown(dir_fd, static_cast<uid_t>(-1), *gid) != 0 || ::fchmod(dir_fd, mode) != 0) {
      return sys_error("cannot open run directory " + config.run_dir + " to its users", errno);
    }
    return {};
  }
  if (!config.group.empty() && (st.st_mode & S_IXOTH) == 0 &&
      (st.st_gid != *gid || (st.st_mode & S_IXGRP) == 0)) {
    spdlog::warn(
        "members of group {} cannot enter the run directory {}, so they cannot reach the "
        "worker socket (give the directory to the group with mode 0750)",
        config.group, config.run_dir);
  }
  return {};
}

// An existing run directory is trusted when this user or root owns it and
// nobody else may write it, or when, like /tmp, it is sticky: there others
// may add entries but not remove or rename ours, and every entry the broker
// uses (lock, sockets) is itself checked before use.
Status check_run_dir(const std::string& path, const struct stat& st) {
  const std::string hint = "use a directory of your own (--run-dir)";
  if (!S_ISDIR(st.st_mode)) {
    return layout::check_owned(st, S_IFDIR, ::geteuid(), "run directory", path, hint);
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return layout::check_owned(st, S_IFDIR, ::geteuid(), "run directory", path, hint);
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return layout::check_owned(st, S_IFDIR, st.st_uid, "run directory", path, hint);
  }
  return {};
}

// Creates (mkdir 0700: private until set_run_dir_access opens it) or opens
// the run directory; returns its descriptor.
Result<int> open_run_dir(const Config& config, bool* created) {
  const std::string& path = config.run_dir;
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec)
    return error(ErrorCode::kInternal, "cannot create run directory " + path + ": " + ec.message());
  *created = ::mkdir(path.c_str(), 0700) == 0;
  if (!*created && errno != EEXIST) return sys_error("cannot create run directory " + path, errno);
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st {};
  if (fd < 0) {
    const int err = errno;
    if ((err == ELOOP || err == ENOTDIR) && ::lstat(path.c_str(), &st) == 0) {
      return check_run_dir(path, st);  // a symlink or a file: refused, naming its owner
    }
    return sys_error("cannot open run directory " + path, err);
  }
  Status s = ::fstat(fd, &st) == 0 ? Status{} : sys_error("fstat " + path, errno);
  if (s.ok()) s = check_run_dir(path, st);
  if (s.ok()) s = set_run_dir_access(config, fd, st, *created);
  if (!s.ok()) {
    ::close(fd);
    if (*created) ::rmdir(path.c_str());
    return s;
  }
  return fd;
}

Status busy(const Config& config, int fd, const std::string& path) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return error(ErrorCode::kForbidden, "pool \"" + config.pool +
                                          "\" is already served by another modelpoold (pid " + pid +
                                          ", lock " + path + ")");
}

struct Opened {
  int fd = -1;
  bool created = false;
};

// Opens DIR/NAME never through a symlink and checks what it opened.
Result<Opened> open_lock_file(int dir_fd, const std::string& name, const std::string& path) {
  Opened o;
  o.fd = ::openat(dir_fd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  o.created = o.fd >= 0;
  if (o.fd < 0 && errno == EEXIST) {
    o.fd = ::openat(dir_fd, name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  }
  struct stat st {};
  if (o.fd < 0) {
    const int err = errno;
    if (err == ELOOP && ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      return layout::check_owned(st, S_IFREG, ::geteuid(), "lock file", path,
                                 "remove it if no broker of yours uses it");
    }
    if (err == ENOENT) return Opened{};  // removed meanwhile: try again
    return sys_error("cannot open lock " + path, err);
  }
  Status s = ::fstat(o.fd, &st) == 0 ? Status{} : sys_error("fstat " + path, errno);
  if (s.ok()) {
    s = layout::check_owned(st, S_IFREG, ::geteuid(), "lock file", path,
                            "remove it if no broker of yours uses it");
  }
  if (!s.ok()) {
    ::close(o.fd);
    return s;
  }
  return o;
}

}  // namespace

Result<std::unique_ptr<PoolLock>> acquire_pool_lock(const Config& config) {
  bool dir_created = false;
  auto dir = open_run_dir(config, &dir_created);
  if (!dir.ok()) return dir.status();
  const std::string path = layout::lock_path(config.run_dir, config.pool);
  const std::string name = std::filesystem::path(path).filename();
  // A start that fails removes the lock file it created; one that raced it
  // may then hold a lock on a file no longer at the path. So a lock counts
  // only while the path still names the file locked (bounded retries).
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto opened = open_lock_file(*dir, name, path);
    if (!opened.ok()) {
      ::close(*dir);
      return opened.status();
    }
    if (opened->fd < 0) continue;
    auto lock = std::make_unique<PoolLock>(*dir, opened->fd, config.run_dir, name, opened->created,
                                           dir_created);
    if (::flock(opened->fd, LOCK_EX | LOCK_NB) != 0) {
      Status s = busy(config, opened->fd, path);
      lock->keep();  // another broker's file
      return s;
    }
    struct stat mine {
    }, there{};
    if (::fstat(opened->fd, &mine) != 0 ||
        ::fstatat(*dir, name.c_str(), &there, AT_SYMLINK_NOFOLLOW) != 0 ||
        mine.st_dev != there.st_dev || mine.st_ino != there.st_ino) {
      lock->keep();
      dir_created = false;
      *dir = ::open(config.run_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (*dir < 0) return sys_error("cannot open run directory " + config.run_dir, errno);
      continue;
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(opened->fd, 0) != 0 || ::pwrite(opened->fd, pid.data(), pid.size(), 0) < 0) {
      spdlog::warn("cannot write pid to {}: {}", path, std::strerror(errno));
    }
    return lock;
  }
  ::close(*dir);
  return error(ErrorCode::kInternal, "cannot take lock " + path + ": it keeps changing");
}

}  // namespace modelpool::broker
