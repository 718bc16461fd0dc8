// File: bench/io/file_tool.cc
//
// mp_bench_file: makes the bench's model files and measures the non-pool
// ways to get their bytes, so the pool's numbers have baselines from the
// same run.
//   mkfile  --path P --bytes N        pseudo-random contents, fsync'ed
//   uncache --path P                  drop P from the page cache
//                                     (fsync + POSIX_FADV_DONTNEED); emits
//                                     file/resident (fraction still cached)
//   cache   --path P                  read P once so it is in page cache
//   read    --path P [--direct]       read() into one reused, pre-faulted
//                                     buffer: the source's speed
//   naive   --path P --dest D [--direct]
//                                     the naive pool: read() P and write()
//                                     it into a fresh file D (on /dev/shm);
//                                     D is unlinked after timing unless
//                                     --keep (then nothing is emitted)
//   backmem --bytes N                 writes N bytes of fresh anonymous
//                                     memory and frees it: on a VM whose
//                                     kernel reports free memory to the
//                                     hypervisor, the next N bytes the
//                                     kernel hands out are backed by the
//                                     host again (see docs/benchmarks.md);
//                                     emits backmem/seconds
// Timed commands emit <cmd>/seconds and <cmd>/throughput (GB/s).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <random>
#include <vector>

#include "bench/common/bench_util.hpp"

namespace mb = modelpool::bench;

namespace {

constexpr std::uint64_t kChunk = 8ull << 20;

struct Buffer {  // page-aligned for O_DIRECT, faulted in
  explicit Buffer(std::uint64_t n) : size(n) {
    data = static_cast<char*>(::mmap(nullptr, n, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
    if (data == MAP_FAILED) mb::die_errno("mmap buffer");
  }
  ~Buffer() { ::munmap(data, size); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  char* data;
  std::uint64_t size;
};

int open_or_die(const std::string& path, int flags, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) mb::die_errno("open " + path);
  return fd;
}

std::uint64_t file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) mb::die_errno("fstat");
  return static_cast<std::uint64_t>(st.st_size);
}

void write_all(int fd, const char* p, std::uint64_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0) mb::die_errno("write");
    p += w;
    n -= static_cast<std::uint64_t>(w);
  }
}

// Reads the whole of `fd` through `buf`, calling sink(data, n) per chunk.
template <typename Sink>
std::uint64_t read_through(int fd, Buffer& buf, Sink sink) {
  std::uint64_t total = 0;
  for (;;) {
    ssize_t r = ::read(fd, buf.data, buf.size);
    if (r < 0) mb::die_errno("read");
    if (r == 0) return total;
    sink(buf.data, static_cast<std::uint64_t>(r));
    total += static_cast<std::uint64_t>(r);
  }
}

void emit_timed(const std::string& cmd, std::uint64_t bytes, std::int64_t ns, bool direct) {
  const nlohmann::json labels = {{"bytes", bytes}, {"direct", direct}};
  mb::emit(cmd, "seconds", static_cast<double>(ns) / 1e9, "s", labels);
  mb::emit(cmd, "throughput", static_cast<double>(bytes) / static_cast<double>(ns), "GB/s", labels);
}

void mkfile(const mb::Args& a) {
  const std::string path = a.required("path");
  const std::uint64_t bytes = a.size("bytes", 0);
  int fd = open_or_die(path, O_WRONLY | O_CREAT | O_TRUNC);
  std::vector<std::uint64_t> words(kChunk / 8);
  std::mt19937_64 rng(bytes ^ 0x6d6f64656c706f6fULL);
  for (std::uint64_t done = 0; done < bytes;) {
    for (auto& w : words) w = rng();
    const std::uint64_t n = std::min<std::uint64_t>(kChunk, bytes - done);
    write_all(fd, reinterpret_cast<const char*>(words.data()), n);
    done += n;
  }
  if (::fsync(fd) != 0) mb::die_errno("fsync");
  ::close(fd);
}

void uncache(const mb::Args& a) {
  const std::string path = a.required("path");
  int fd = open_or_die(path, O_RDONLY);
  ::fdatasync(fd);
  const std::uint64_t n = file_size(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::uint64_t resident = 0;
  if (n > 0) {
    void* p = ::mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) mb::die_errno("mmap");
    std::vector<unsigned char> vec((n + 4095) / 4096);
    if (::mincore(p, n, vec.data()) != 0) mb::die_errno("mincore");
    for (unsigned char v : vec) resident += v & 1u;
    ::munmap(p, n);
    mb::emit("file", "resident", static_cast<double>(resident) / static_cast<double>(vec.size()),
             "fraction", {{"bytes", n}});
  }
  ::close(fd);
}

void read_cmd(const mb::Args& a, bool naive, bool report = true) {
  const std::string path = a.required("path");
  const bool direct = a.has("direct");
  Buffer buf(kChunk);
  const std::int64_t t0 = mb::now_ns();
  int fd = open_or_die(path, O_RDONLY | (direct ? O_DIRECT : 0));
  std::uint64_t bytes = 0;
  if (!naive) {
    bytes = read_through(fd, buf, [](const char*, std::uint64_t) {});
  } else {
    const std::string dest = a.required("dest");
    int out = open_or_die(dest, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL, 0600);
    bytes = read_through(fd, buf, [&](const char* p, std::uint64_t n) { write_all(out, p, n); });
    ::close(out);
  }
  ::close(fd);
  const std::int64_t t1 = mb::now_ns();
  if (naive && a.has("keep")) return;
  if (naive) ::unlink(a.required("dest").c_str());
  if (!report) return;
  emit_timed(naive ? "naive" : "read", bytes, t1 - t0, direct);
}

void backmem(const mb::Args& a) {
  const std::uint64_t bytes = a.size("bytes", 0);
  if (bytes == 0) return;
  const std::int64_t t0 = mb::now_ns();
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) mb::die("backmem: mmap " + std::to_string(bytes) + " bytes failed");
  (void)::madvise(p, bytes, MADV_HUGEPAGE);  // fewer faults where THP is allowed
  if (::madvise(p, bytes, MADV_POPULATE_WRITE) != 0) {
    auto* c = static_cast<volatile char*>(p);
    for (std::uint64_t i = 0; i < bytes; i += 4096) c[i] = 1;
  }
  ::munmap(p, bytes);
  mb::emit("backmem", "seconds", static_cast<double>(mb::now_ns() - t0) / 1e9, "s",
           {{"bytes", bytes}});
}

}  // namespace

int main(int argc, char** argv) {
  mb::Args args(argc, argv);
  const std::string& cmd = args.command();
  if (cmd == "mkfile") {
    mkfile(args);
  } else if (cmd == "uncache") {
    uncache(args);
  } else if (cmd == "read" || cmd == "cache") {
    read_cmd(args, false, cmd == "read");
  } else if (cmd == "naive") {
    read_cmd(args, true);
  } else if (cmd == "backmem") {
    backmem(args);
  } else {
    mb::die("usage: mp_bench_file mkfile|uncache|cache|read|naive|backmem ...");
  }
  return 0;
}
