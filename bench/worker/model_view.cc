// File: bench/worker/model_view.cc
//
// The private baselines of model_view.hpp: read() and mmap().
#include "bench/worker/model_view.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/common/bench_util.hpp"

namespace modelpool::bench {

namespace {

constexpr std::uint64_t kReadChunk = 64ull << 20;

std::uint64_t size_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) die_errno("fstat");
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace

ModelView open_read(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die_errno("open " + path);
  ModelView v;
  v.size = size_of(fd);
  // Like a loader's std::vector/bytearray: fresh anonymous memory, so the
  // page faults of the private copy are part of the cost.
  std::shared_ptr<std::byte[]> buf(new std::byte[v.size]);
  std::uint64_t done = 0;
  while (done < v.size) {
    ssize_t r = ::read(fd, buf.get() + done, std::min(kReadChunk, v.size - done));
    if (r <= 0) die_errno("read " + path);
    done += static_cast<std::uint64_t>(r);
    if (v.first_byte_ns == 0) v.first_byte_ns = now_ns();
  }
  ::close(fd);
  v.data = buf.get();
  v.keep_alive = std::move(buf);
  return v;
}

ModelView open_mmap(const std::string& path, bool shared, bool populate) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die_errno("open " + path);
  ModelView v;
  v.size = size_of(fd);
  const int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | (populate ? MAP_POPULATE : 0);
  void* p = ::mmap(nullptr, v.size, PROT_READ, flags, fd, 0);
  if (p == MAP_FAILED) die_errno("mmap " + path);
  ::close(fd);
  v.data = static_cast<const std::byte*>(p);
  volatile std::byte first = v.data[0];
  (void)first;
  v.first_byte_ns = now_ns();
  const std::uint64_t n = v.size;
  v.keep_alive = std::shared_ptr<void>(p, [n](void* q) { ::munmap(q, n); });
  return v;
}

}  // namespace modelpool::bench
