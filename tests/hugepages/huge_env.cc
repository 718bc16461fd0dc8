// File: tests/hugepages/huge_env.cc
//
// Scratch huge-page filesystems (by ScratchMount), the kernel's huge page
// counters and smaps readings for the huge-page tests (see huge_env.hpp).
#include "huge_env.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>

namespace modelpool::testing {
namespace {

const char kPoolDir[] = "/sys/kernel/mm/hugepages/hugepages-2048kB/";

std::uint64_t read_number(const std::string& path) {
  std::ifstream in(path);
  std::uint64_t v = 0;
  in >> v;
  return v;
}

}  // namespace

std::string to_string(HugeKind kind) { return kind == HugeKind::kTmpfs ? "tmpfs" : "hugetlbfs"; }

HugeTestLock::HugeTestLock() {
  // The directory of the kernel's huge page pools: always there where these
  // tests can run, and locking it leaves no file behind.
  fd_ = ::open("/sys/kernel/mm/hugepages", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ >= 0) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
}

HugeTestLock::~HugeTestLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

HugetlbPool read_hugetlb_pool() {
  const std::string dir = kPoolDir;
  return {read_number(dir + "nr_hugepages"), read_number(dir + "free_hugepages"),
          read_number(dir + "resv_hugepages")};
}

std::unique_ptr<ScratchMount> mount_huge(HugeKind kind, std::uint64_t bytes,
                                         std::uint64_t pages_to_add, std::string* why) {
  return kind == HugeKind::kTmpfs ? ScratchMount::tmpfs(bytes, /*huge=*/true, why)
                                  : ScratchMount::hugetlbfs(bytes, pages_to_add, why);
}

MappingPages mapping_pages(const void* addr) {
  MappingPages m;
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  while (std::getline(in, line)) {
    std::uintmax_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%jx-%jx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (!inside) continue;
    char key[64] = {};
    std::uintmax_t kb = 0;
    if (std::sscanf(line.c_str(), "%63[^:]: %ju kB", key, &kb) != 2) continue;
    const std::string k = key;
    if (k == "Rss") m.rss = kb;
    if (k == "Shared_Hugetlb" || k == "Private_Hugetlb") m.hugetlb += kb;
    if (k == "ShmemPmdMapped" || k == "FilePmdMapped") m.pmd_mapped += kb;
    if (k == "KernelPageSize") m.kernel_page = kb;
  }
  return m;
}

nlohmann::json to_json(const MappingPages& m) {
  return {{"rss_kb", m.rss},
          {"hugetlb_kb", m.hugetlb},
          {"pmd_mapped_kb", m.pmd_mapped},
          {"kernel_page_kb", m.kernel_page},
          {"resident_kb", m.resident()}};
}

std::uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace modelpool::testing
