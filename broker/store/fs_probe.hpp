// File: broker/store/fs_probe.hpp
//
// What the filesystem holding the segment is made of: its page size (which
// sets extent alignment and what a first touch costs) and whether it is
// hugetlbfs, which allocates and punches with fallocate but refuses write(),
// so the loader must copy through a mapping there. statfs alone reports 4 KiB
// for a huge=always tmpfs, so tmpfs mounts are looked up in
// /proc/self/mountinfo. Stateless; thread-safe.
#ifndef MODELPOOL_BROKER_STORE_FS_PROBE_HPP_
#define MODELPOOL_BROKER_STORE_FS_PROBE_HPP_

#include <cstdint>
#include <optional>
#include <string>

#include "shm/status.hpp"

namespace modelpool::broker {

struct FsProbe {
  std::uint64_t page_size = 4096;
  bool hugetlbfs = false;
};

// Probes the filesystem of the open file `fd`. Errors: kInternal (fstatfs).
Result<FsProbe> probe_filesystem(int fd);

// The huge pages a hugetlbfs mount can still get. statfs reports only what
// is left under the mount's size= limit (and 0 without one), while the pages
// themselves come from the kernel's pool of that page size
// (/sys/kernel/mm/hugepages, which /proc/meminfo's HugePages_* show for the
// default size): free minus reserved. Pages a min_size= mount reserved for
// itself count as reserved, i.e. not free.
struct HugetlbSpace {
  std::uint64_t page_size = 0;
  std::uint64_t pool_free_pages = 0;              // HugePages_Free - HugePages_Rsvd
  std::optional<std::uint64_t> mount_free_pages;  // nullopt: no size= limit
  std::uint64_t free_pages() const {
    return mount_free_pages && *mount_free_pages < pool_free_pages ? *mount_free_pages
                                                                   : pool_free_pages;
  }
  std::uint64_t free_bytes() const { return free_pages() * page_size; }
};

// nullopt when `path` (a directory or a file) is not on hugetlbfs.
// Errors: kInternal (statfs).
Result<std::optional<HugetlbSpace>> hugetlbfs_space(const std::string& path);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_FS_PROBE_HPP_
