// File: bench/limits/memcpy_bench.cc
//
// mp_bench_memcpy: the machine's single-thread memory-copy bandwidth, the
// ceiling for any load into the pool. Both buffers are faulted in first so
// only copying is timed.
//   mp_bench_memcpy [--bytes 256MiB] [--passes 5]
// Emits memcpy/bandwidth (GB/s, the median pass) and memcpy/bandwidth_max.
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "bench/common/bench_util.hpp"

namespace mb = modelpool::bench;

int main(int argc, char** argv) {
  mb::Args args(argc, argv);
  const std::uint64_t bytes = args.size("bytes", 256ull << 20);
  const int passes = static_cast<int>(args.num("passes", 5));
  auto* src = static_cast<char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  auto* dst = static_cast<char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  if (src == MAP_FAILED || dst == MAP_FAILED) mb::die_errno("mmap");
  for (std::uint64_t i = 0; i < bytes; i += 64) src[i] = static_cast<char>(i >> 6);
  std::memcpy(dst, src, bytes);  // warm-up pass

  std::vector<double> gbps;
  for (int p = 0; p < passes; ++p) {
    const std::int64_t t0 = mb::now_ns();
    std::memcpy(dst, src, bytes);
    const std::int64_t t1 = mb::now_ns();
    gbps.push_back(static_cast<double>(bytes) / static_cast<double>(t1 - t0));
  }
  std::sort(gbps.begin(), gbps.end());
  volatile char sink = dst[bytes / 2];
  (void)sink;
  mb::emit("memcpy", "bandwidth", gbps[gbps.size() / 2], "GB/s", {{"bytes", bytes}});
  mb::emit("memcpy", "bandwidth_max", gbps.back(), "GB/s", {{"bytes", bytes}});
  return 0;
}
