// File: broker/system_info.cc
#include "broker/system_info.hpp"

#include <fstream>
#include <sstream>

namespace modelpool::broker {

MemInfo read_meminfo() {
  MemInfo m;
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string key;
    std::uint64_t kib = 0;
    ss >> key >> kib;
    if (key == "MemTotal:") m.total = kib * 1024;
    if (key == "MemAvailable:") m.available = kib * 1024;
    if (key == "Shmem:") m.shmem = kib * 1024;
  }
  return m;
}

}  // namespace modelpool::broker
