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

#include "shm/status.hpp"

namespace modelpool::broker {

struct FsProbe {
  std::uint64_t page_size = 4096;
  bool hugetlbfs = false;
};

// Probes the filesystem of the open file `fd`. Errors: kInternal (fstatfs).
Result<FsProbe> probe_filesystem(int fd);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_FS_PROBE_HPP_
