// File: tests/hugepages/huge_env.hpp
//
// What the huge-page tests need from the host: a scratch filesystem on
// 2 MiB pages (a huge=always tmpfs, or hugetlbfs with pages added to the
// kernel's pool for it, both by scripts/hugepages.sh through ScratchMount),
// the kernel's huge page counters, and a lock that keeps these tests from
// running at the same time as each other (they read system-wide counters).
// Every change is undone at scope exit: the mount is unmounted and the pages
// that were added are taken back, so the machine is left as it was even when
// a test fails.
#ifndef MODELPOOL_TESTS_HUGEPAGES_HUGE_ENV_HPP_
#define MODELPOOL_TESTS_HUGEPAGES_HUGE_ENV_HPP_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/support/scratch_mount.hpp"

namespace modelpool::testing {

inline constexpr std::uint64_t kMiB = 1ULL << 20;
inline constexpr std::uint64_t kHugePage = 2 * kMiB;

enum class HugeKind { kTmpfs, kHugetlbfs };
std::string to_string(HugeKind kind);

// Holds an flock on /sys/kernel/mm/hugepages for its lifetime: one
// huge-page test at a time on this host, whichever binary or ctest job runs it.
class HugeTestLock {
 public:
  HugeTestLock();
  ~HugeTestLock();
  HugeTestLock(const HugeTestLock&) = delete;
  HugeTestLock& operator=(const HugeTestLock&) = delete;

 private:
  int fd_ = -1;
};

// The 2 MiB huge page pool of the kernel (/sys/kernel/mm/hugepages).
struct HugetlbPool {
  std::uint64_t total = 0, free = 0, reserved = 0;
  std::uint64_t available() const { return free > reserved ? free - reserved : 0; }
};
HugetlbPool read_hugetlb_pool();

// A scratch filesystem on 2 MiB pages on a fresh directory (ScratchMount:
// unmounted, and the pages given back, when destroyed). tmpfs:
// size=`bytes`,huge=always. hugetlbfs: adds `pages_to_add` pages to the
// kernel's pool, then mounts pagesize=2M (with size=`bytes` unless `bytes`
// is 0: no limit). nullptr (reason in *why) when the host cannot.
std::unique_ptr<ScratchMount> mount_huge(HugeKind kind, std::uint64_t bytes,
                                         std::uint64_t pages_to_add, std::string* why);

// What /proc/PID/smaps says about one mapping, in KiB. `resident` counts
// hugetlbfs pages too (they are not in Rss).
struct MappingPages {
  std::uint64_t rss = 0, hugetlb = 0, pmd_mapped = 0, kernel_page = 0;
  std::uint64_t resident() const { return rss + hugetlb; }
};
// Reads the mapping of the calling process that contains `addr`.
MappingPages mapping_pages(const void* addr);
nlohmann::json to_json(const MappingPages& m);

// Bytes the filesystem holds for `path` (st_blocks * 512).
std::uint64_t allocated_bytes(const std::string& path);

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_HUGEPAGES_HUGE_ENV_HPP_
