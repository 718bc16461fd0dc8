// File: broker/system_info.hpp
//
// Facts about the host the broker sizes itself by: /proc/meminfo and the
// free space of a filesystem. Pure reads; thread-safe.
#ifndef MODELPOOL_BROKER_SYSTEM_INFO_HPP_
#define MODELPOOL_BROKER_SYSTEM_INFO_HPP_

#include <cstdint>
#include <string>

namespace modelpool::broker {

struct MemInfo {
  std::uint64_t total = 0;      // MemTotal, bytes
  std::uint64_t available = 0;  // MemAvailable, bytes
  std::uint64_t shmem = 0;      // Shmem, bytes
};
MemInfo read_meminfo();

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SYSTEM_INFO_HPP_
