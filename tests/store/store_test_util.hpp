// File: tests/store/store_test_util.hpp
//
// Helpers for the broker/store tests: unique pool names, scratch directories,
// files of random bytes, scratch tmpfs/hugetlbfs mounts (root only), the
// Shmem line of /proc/meminfo, and segments removed at scope exit.
#ifndef MODELPOOL_TESTS_STORE_STORE_TEST_UTIL_HPP_
#define MODELPOOL_TESTS_STORE_STORE_TEST_UTIL_HPP_

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "broker/store/segment.hpp"

namespace modelpool::broker::testing {

inline std::string unique_pool() {
  static std::atomic<int> n{0};
  return "mp-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// A fresh directory under `parent`, removed with its contents at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& parent = "/tmp") {
    std::string templ = parent + "/mp-store-test-XXXXXX";
    path_ = ::mkdtemp(templ.data()) != nullptr ? templ : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::vector<char> random_bytes(std::size_t n, std::uint64_t seed) {
  std::vector<char> out(n);
  std::mt19937_64 gen(seed);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t v = gen();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<char>(gen());
  return out;
}

inline void write_file(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<char> pread_all(int fd, std::uint64_t offset, std::size_t len) {
  std::vector<char> out(len);
  std::size_t done = 0;
  while (done < len) {
    const ssize_t r = ::pread(fd, out.data() + done, len - done, static_cast<off_t>(offset + done));
    if (r <= 0) break;
    done += static_cast<std::size_t>(r);
  }
  out.resize(done);
  return out;
}

// The Shmem line of /proc/meminfo, in bytes.
inline std::uint64_t meminfo_shmem_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "Shmem:") return kib * 1024;
  }
  return 0;
}

// Bytes the filesystem holds for `path` (st_blocks).
inline std::uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// A scratch filesystem mounted on a fresh directory; unmounted at scope exit.
// open() returns nullptr (with the reason in *why) when not root or refused.
class ScopedMount {
 public:
  static std::unique_ptr<ScopedMount> open(const char* fstype, const std::string& options,
                                           std::string* why) {
    if (::geteuid() != 0) {
      *why = std::string("mounting a ") + fstype + " needs root";
      return nullptr;
    }
    auto m = std::unique_ptr<ScopedMount>(new ScopedMount());
    if (m->dir_.path().empty() ||
        ::mount(fstype, m->dir_.path().c_str(), fstype, 0, options.c_str()) != 0) {
      *why = std::string("mount -t ") + fstype + " -o " + options + ": " + std::strerror(errno);
      return nullptr;
    }
    m->mounted_ = true;
    return m;
  }
  ~ScopedMount() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  const std::string& path() const { return dir_.path(); }

 private:
  ScopedMount() = default;
  TempDir dir_;
  bool mounted_ = false;
};

// Options for a test segment in /dev/shm (or `dir`), removed at scope exit.
class ScopedSegmentName {
 public:
  explicit ScopedSegmentName(std::uint64_t data_bytes, std::string dir = "",
                             std::uint64_t capacity = 64) {
    options_.pool = unique_pool();
    options_.segment_dir = std::move(dir);
    options_.data_bytes = data_bytes;
    options_.catalog_capacity = capacity;
    (void)Segment::remove(options_);
  }
  ~ScopedSegmentName() { (void)Segment::remove(options_); }
  SegmentOptions& options() { return options_; }

 private:
  SegmentOptions options_;
};

}  // namespace modelpool::broker::testing

#endif  // MODELPOOL_TESTS_STORE_STORE_TEST_UTIL_HPP_
