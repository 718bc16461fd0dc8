// File: tests/fault/chaos/chaos_lock.hpp
//
// What a real worker does for each extent it maps (clientlib's
// SegmentFile::lock_extent): an OFD read lock on [offset, offset + size) of
// the segment file, through a descriptor of its own, held while the bytes
// are mapped and dropped before the release is sent. The broker probes these
// locks before it frees, reuses or punches an extent, so the chaos clients,
// which speak the raw protocol, must take them too.
#ifndef MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_LOCK_HPP_
#define MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_LOCK_HPP_

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace modelpool::chaos {

inline bool ofd_lock(int fd, short type, std::uint64_t offset, std::uint64_t size, int cmd) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = static_cast<off_t>(size);
  int rc = 0;
  do {
    rc = ::fcntl(fd, cmd, &fl);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return false;
  return cmd != F_OFD_GETLK || fl.l_type != F_UNLCK;
}

class ExtentLock {
 public:
  ExtentLock(const std::string& segment_path, std::uint64_t offset, std::uint64_t size)
      : fd_(::open(segment_path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("open " + segment_path + " for an extent lock");
    if (size > 0 && !ofd_lock(fd_, F_RDLCK, offset, size, F_OFD_SETLK)) {
      ::close(fd_);
      throw std::runtime_error("cannot OFD-read-lock extent " + std::to_string(offset));
    }
  }
  ~ExtentLock() { ::close(fd_); }  // closing the description drops its lock
  ExtentLock(const ExtentLock&) = delete;
  ExtentLock& operator=(const ExtentLock&) = delete;

 private:
  int fd_;
};

// Whether some process holds a lock on any byte of [offset, offset + size).
inline bool extent_locked(const std::string& segment_path, std::uint64_t offset,
                          std::uint64_t size) {
  const int fd = ::open(segment_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool locked = ofd_lock(fd, F_WRLCK, offset, size, F_OFD_GETLK);
  ::close(fd);
  return locked;
}

}  // namespace modelpool::chaos

#endif  // MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_LOCK_HPP_
