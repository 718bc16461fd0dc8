// File: bench/worker/worker_main.cc
//
// mp_bench_worker: one fresh "worker process" of the cold-start and memory
// scenarios. It gets a model's bytes one way, touches every 4 KiB page and
// reports when the first and the last byte were readable (and its minor
// page faults, and how much of its memory the kernel mapped with 2 MiB
// entries), measured from
// `--t0` (the driver's CLOCK_MONOTONIC just before spawning us, so process
// start-up is included) and from main() entry.
//   mp_bench_worker --mode read|mmap|shm|modelpool [--path P]
//                   [--socket S --model M [--tensors]] [--t0 NS] [--populate]
//                   [--hold]
//   mp_bench_worker --probe      prints {"modelpool_client": true|false}
// --tensors touches the pages of every tensor of the model (for a
// repository, across all its shards) instead of those of bytes(). With
// --hold the worker prints its numbers, then keeps the bytes mapped until
// its stdin closes, so the driver can read /proc/PID/smaps_rollup; it also
// reports its RssAnon at main() entry and after the touch.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "bench/common/bench_util.hpp"
#include "bench/worker/model_view.hpp"

namespace mb = modelpool::bench;

namespace {

// Bytes this process maps with PMD (2 MiB) entries: page cache
// (FilePmdMapped), shmem/tmpfs (ShmemPmdMapped) and hugetlbfs (*_Hugetlb),
// from /proc/self/smaps_rollup.
std::uint64_t pmd_mapped_bytes() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string line;
  std::uint64_t kb = 0;
  for (const char* key :
       {"FilePmdMapped:", "ShmemPmdMapped:", "Shared_Hugetlb:", "Private_Hugetlb:"}) {
    in.clear();
    in.seekg(0);
    while (std::getline(in, line)) {
      if (line.rfind(key, 0) == 0)
        kb += std::strtoull(line.c_str() + std::strlen(key), nullptr, 10);
    }
  }
  return kb * 1024;
}

// RssAnon of this process (/proc/self/status), in bytes.
std::uint64_t rss_anon_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::strtoull(line.c_str() + 8, nullptr, 10) * 1024;
  }
  return 0;
}

// Touches every page of each part, from the start of the page it begins in.
std::uint64_t touch_parts(const std::vector<std::span<const std::byte>>& parts) {
  std::uint64_t sum = 0;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    const auto skew = reinterpret_cast<std::uintptr_t>(p.data()) % 4096;
    sum += mb::touch_pages(p.data() - skew, p.size() + skew);
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t entry = mb::now_ns();
  mb::Args args(argc, argv);
  if (args.has("probe")) {
    std::printf("{\"modelpool_client\": %s}\n", mb::have_modelpool_client() ? "true" : "false");
    return 0;
  }
  const std::string mode = args.required("mode");
  const std::int64_t t0 = args.has("t0") ? static_cast<std::int64_t>(args.num("t0", 0)) : entry;
  const bool hold = args.has("hold");
  const std::uint64_t anon_before = hold ? rss_anon_bytes() : 0;  // outside cold-start timing

  mb::ModelView v;
  if (mode == "read") {
    v = mb::open_read(args.required("path"));
  } else if (mode == "mmap" || mode == "shm") {
    v = mb::open_mmap(args.required("path"), mode == "shm", args.has("populate"));
  } else if (mode == "modelpool") {
    v = mb::open_modelpool(args.required("socket"), args.required("model"), args.has("tensors"));
  } else {
    mb::die("unknown --mode " + mode);
  }
  const std::uint64_t sum =
      v.parts.empty() ? mb::touch_pages(v.data, v.size) : touch_parts(v.parts);
  const std::int64_t done = mb::now_ns();

  const nlohmann::json labels = {{"mode", mode}, {"bytes", v.size}, {"sum", sum % 251}};
  mb::emit("cold_start", "startup_ns", static_cast<double>(entry - t0), "ns", labels);
  mb::emit("cold_start", "first_byte_ns", static_cast<double>(v.first_byte_ns - t0), "ns", labels);
  mb::emit("cold_start", "all_bytes_ns", static_cast<double>(done - t0), "ns", labels);
  mb::emit("cold_start", "in_process_ns", static_cast<double>(done - entry), "ns", labels);
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);  // page faults say whether pages came 4 KiB at a time
  mb::emit("cold_start", "minor_faults", static_cast<double>(ru.ru_minflt), "count", labels);
  // And the kernel says how much it mapped with 2 MiB entries (after the timing).
  mb::emit("cold_start", "pmd_mapped_bytes", static_cast<double>(pmd_mapped_bytes()), "bytes",
           labels);
  if (hold) {
    mb::emit("worker", "rss_anon_before", static_cast<double>(anon_before), "bytes", labels);
    mb::emit("worker", "rss_anon_after", static_cast<double>(rss_anon_bytes()), "bytes", labels);
    mb::emit("worker", "ready", 1, "", {{"pid", ::getpid()}});
    char c;
    while (::read(STDIN_FILENO, &c, 1) > 0) {
    }
  }
  return 0;
}
