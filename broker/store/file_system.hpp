// File: broker/store/file_system.hpp
//
// The small file-access interface through which the loader opens and stats
// model files, so tests can inject faults (after leveldb's Env and
// fault_injection_test). Reads themselves go to SourceFile::fd() through
// io_uring; every read's outcome then passes SourceFile::filter_read(), where
// a test implementation can turn it into an error, a short read or EOF.
//
// Thread safety: a FileSystem is shared by all loader threads and must be
// thread-safe; a SourceFile is used by one thread at a time.
#ifndef MODELPOOL_BROKER_STORE_FILE_SYSTEM_HPP_
#define MODELPOOL_BROKER_STORE_FILE_SYSTEM_HPP_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "shm/layout/segment_layout.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// What statx says about an open file: the loader compares it before and
// after a copy, and any difference means the file changed in place while it
// was read. ctime catches a rewrite that put mtime back (rsync -t --inplace).
struct FileVersion {
  layout::SourceIdentity identity;  // device, inode, size, mtime
  std::int64_t ctime_ns = 0;
  bool operator==(const FileVersion&) const = default;
};

// "size 10 -> 12, mtime 1.5 -> 1.7": the fields that differ, for messages.
std::string describe_change(const FileVersion& before, const FileVersion& after);

// An open model file. Owns its descriptor.
class SourceFile {
 public:
  SourceFile(int fd, bool direct) : fd_(fd), direct_(direct) {}
  virtual ~SourceFile();
  SourceFile(const SourceFile&) = delete;
  SourceFile& operator=(const SourceFile&) = delete;

  int fd() const { return fd_; }
  bool direct() const { return direct_; }  // opened with O_DIRECT

  // statx of the descriptor (size, mtime, ctime, inode, device). Asking for
  // ctime also makes filesystems with multigrain timestamps (tmpfs, ext4,
  // xfs, btrfs since Linux 6.13) stamp the next change with a fine-grained
  // time, so a write right after this call still moves mtime and ctime.
  // Errors: kLoadFailed.
  virtual Result<FileVersion> version();
  // Sees the result of every read of [offset, offset+len) into `buf` before
  // the loader uses it: bytes read, 0 at EOF, or -errno. Returns what the
  // loader should believe happened (at most `result` bytes); a fault may
  // scribble on buf[returned, len) to mimic bytes that never arrived.
  virtual ssize_t filter_read(std::uint64_t offset, char* buf, std::size_t len, ssize_t result) {
    (void)offset;
    (void)buf;
    (void)len;
    return result;
  }

 private:
  int fd_;
  bool direct_;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens `path` read-only (O_CLOEXEC, plus O_DIRECT when `direct` and the
  // filesystem accepts it; SourceFile::direct() says which it got).
  // Errors: kNotFound (no such file), kLoadFailed (anything else).
  virtual Result<std::unique_ptr<SourceFile>> open_source(const std::string& path, bool direct) = 0;
  // Identity of the file at `path` (follows symlinks), for generations.
  // Errors: kNotFound, kLoadFailed.
  virtual Result<layout::SourceIdentity> stat(const std::string& path) = 0;
};

// open(2)/stat(2) on the real filesystem. Thread-safe, shared.
std::shared_ptr<FileSystem> default_file_system();

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_FILE_SYSTEM_HPP_
