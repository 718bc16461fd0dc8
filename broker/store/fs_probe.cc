// File: broker/store/fs_probe.cc
//
// Filesystem facts for the segment (see fs_probe.hpp) and the free-space
// query used by the budget check at start (on hugetlbfs: free huge pages).
#include "broker/store/fs_probe.hpp"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "broker/store/errno_text.hpp"
#include "broker/store/mount_info.hpp"
#include "broker/store/segment.hpp"

namespace modelpool::broker {
namespace {

constexpr std::uint64_t kDefaultHugePage = 2ULL << 20;

std::uint64_t thp_pmd_size() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
  std::uint64_t v = 0;
  if (in >> v && v != 0 && (v & (v - 1)) == 0) return v;
  return kDefaultHugePage;
}

// One number from a sysfs file, or from the `key` line of /proc/meminfo
// (in pages) when the sysfs file is missing.
std::uint64_t read_count(const std::string& sysfs, const std::string& key) {
  std::uint64_t v = 0;
  if (std::ifstream in(sysfs); in >> v) return v;
  std::ifstream meminfo("/proc/meminfo");
  std::string name;
  while (meminfo >> name) {
    if (name == key && meminfo >> v) return v;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

// Free, unreserved pages of size `page_size` in the kernel's pool.
std::uint64_t hugetlb_pool_free_pages(std::uint64_t page_size) {
  const std::string dir =
      "/sys/kernel/mm/hugepages/hugepages-" + std::to_string(page_size >> 10) + "kB/";
  const std::uint64_t free = read_count(dir + "free_hugepages", "HugePages_Free:");
  const std::uint64_t reserved = read_count(dir + "resv_hugepages", "HugePages_Rsvd:");
  return free > reserved ? free - reserved : 0;
}

}  // namespace

Result<FsProbe> probe_filesystem(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) {
    return error(ErrorCode::kInternal, std::string("fstatfs: ") + errno_text(errno));
  }
  FsProbe probe;
  probe.page_size = fs.f_bsize > 0 ? static_cast<std::uint64_t>(fs.f_bsize) : 4096;
  if (static_cast<unsigned long>(fs.f_type) == HUGETLBFS_MAGIC) {
    probe.hugetlbfs = true;
    return probe;
  }
  if (static_cast<unsigned long>(fs.f_type) == TMPFS_MAGIC) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return probe;
    const MountEntry mount = mount_of(st.st_dev);
    const bool huge =
        mount.found && mount.fstype == "tmpfs" && !tmpfs_huge_option(mount.options).empty();
    if (huge || shmem_enabled() == "force") {
      probe.page_size = thp_pmd_size();
    }
  }
  return probe;
}

Result<std::optional<HugetlbSpace>> hugetlbfs_space(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) {
    return error(ErrorCode::kInternal, "statfs " + path + ": " + errno_text(errno));
  }
  if (static_cast<unsigned long>(fs.f_type) != HUGETLBFS_MAGIC) {
    return std::optional<HugetlbSpace>();
  }
  HugetlbSpace space;
  space.page_size = static_cast<std::uint64_t>(fs.f_bsize);
  space.pool_free_pages = hugetlb_pool_free_pages(space.page_size);
  if (fs.f_blocks != 0) space.mount_free_pages = static_cast<std::uint64_t>(fs.f_bavail);
  return std::optional<HugetlbSpace>(space);
}

Result<std::uint64_t> filesystem_free_bytes(const std::string& path) {
  auto huge = hugetlbfs_space(path);
  if (huge.ok() && huge->has_value()) return (*huge)->free_bytes();
  struct statvfs vfs {};
  if (::statvfs(path.c_str(), &vfs) != 0) {
    return error(ErrorCode::kInternal, "statvfs " + path + ": " + errno_text(errno));
  }
  return static_cast<std::uint64_t>(vfs.f_bavail) * static_cast<std::uint64_t>(vfs.f_frsize);
}

}  // namespace modelpool::broker
