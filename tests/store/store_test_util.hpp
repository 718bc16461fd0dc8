// File: tests/store/store_test_util.hpp
//
// Helpers for the broker/store tests: unique pool names, scratch directories,
// files of random bytes, scratch tmpfs/hugetlbfs mounts (root only), the
// Shmem line of /proc/meminfo, and segments removed at scope exit.
#ifndef MODELPOOL_TESTS_STORE_STORE_TEST_UTIL_HPP_
#define MODELPOOL_TESTS_STORE_STORE_TEST_UTIL_HPP_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
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
#include "tests/support/scratch_mount.hpp"

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

// Scratch tmpfs/hugetlbfs mounts (root only) are ScratchMounts, set up by
// scripts/hugepages.sh: `--huge never` for a plain tmpfs.
using modelpool::testing::ScratchMount;

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
