// File: broker/server/process_info.hpp
//
// The broker process as the kernel sees it (/proc/self): what Prometheus
// clients export as process_* metrics. Pure reads; thread-safe. A field the
// kernel does not give stays 0.
#ifndef MODELPOOL_BROKER_SERVER_PROCESS_INFO_HPP_
#define MODELPOOL_BROKER_SERVER_PROCESS_INFO_HPP_

#include <cstdint>

namespace modelpool::broker {

struct ProcessInfo {
  double start_time_s = 0;  // Unix time the process started (boot time + starttime)
  double cpu_seconds = 0;   // user + system CPU time
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;  // RLIMIT_NOFILE's soft limit
};

ProcessInfo read_process_info();

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_PROCESS_INFO_HPP_
