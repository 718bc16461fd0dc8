// File: broker/store/file_system.cc
//
// The real-filesystem FileSystem (see file_system.hpp).
#include "broker/store/file_system.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "broker/store/errno_text.hpp"

namespace modelpool::broker {
namespace {

Status open_error(const std::string& what, const std::string& path, int err) {
  return error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kLoadFailed,
               what + " " + path + ": " + errno_text(err));
}

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<SourceFile>> open_source(const std::string& path, bool direct) override {
    int fd = -1;
    bool got_direct = false;
    if (direct) {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
      // EINVAL: this filesystem does not do O_DIRECT; read through the cache.
      if (fd < 0 && errno != EINVAL) return open_error("open", path, errno);
      got_direct = fd >= 0;
    }
    if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return open_error("open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return open_error("fstat", path, err);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return error(ErrorCode::kLoadFailed, path + ": not a regular file");
    }
    if (!got_direct) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::make_unique<SourceFile>(fd, got_direct);
  }

  Result<layout::SourceIdentity> stat(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return open_error("stat", path, errno);
    layout::SourceIdentity id;
    id.device = static_cast<std::uint64_t>(st.st_dev);
    id.inode = static_cast<std::uint64_t>(st.st_ino);
    id.size = static_cast<std::uint64_t>(st.st_size);
    id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    return id;
  }
};

}  // namespace

SourceFile::~SourceFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<FileVersion> SourceFile::version() {
  struct statx sx {};
  constexpr unsigned kMask = STATX_SIZE | STATX_MTIME | STATX_CTIME | STATX_INO;
  if (::statx(fd_, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, kMask, &sx) != 0) {
    return error(ErrorCode::kLoadFailed, std::string("statx: ") + errno_text(errno));
  }
  FileVersion v;
  v.identity.device = static_cast<std::uint64_t>(makedev(sx.stx_dev_major, sx.stx_dev_minor));
  v.identity.inode = sx.stx_ino;
  v.identity.size = sx.stx_size;
  v.identity.mtime_ns = sx.stx_mtime.tv_sec * 1'000'000'000 + sx.stx_mtime.tv_nsec;
  v.ctime_ns = sx.stx_ctime.tv_sec * 1'000'000'000 + sx.stx_ctime.tv_nsec;
  return v;
}

std::string describe_change(const FileVersion& before, const FileVersion& after) {
  std::string out;
  auto field = [&out](const char* name, auto a, auto b) {
    if (a == b) return;
    if (!out.empty()) out += ", ";
    out += std::string(name) + " " + std::to_string(a) + " -> " + std::to_string(b);
  };
  field("device", before.identity.device, after.identity.device);
  field("inode", before.identity.inode, after.identity.inode);
  field("size", before.identity.size, after.identity.size);
  field("mtime_ns", before.identity.mtime_ns, after.identity.mtime_ns);
  field("ctime_ns", before.ctime_ns, after.ctime_ns);
  return out.empty() ? "nothing" : out;
}

std::shared_ptr<FileSystem> default_file_system() {
  static const std::shared_ptr<FileSystem> fs = std::make_shared<PosixFileSystem>();
  return fs;
}

}  // namespace modelpool::broker
