// File: broker/store/mount_info.cc
//
// Reads of /proc and /sys behind mount_info.hpp.
#include "broker/store/mount_info.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fstream>
#include <sstream>

namespace modelpool::broker {

MountEntry mount_of(dev_t dev) {
  std::ifstream in("/proc/self/mountinfo");
  const std::string want = std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  MountEntry found;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno;
    if (!(fields >> id >> parent >> devno) || devno != want) continue;
    const auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    MountEntry e;
    std::string skip;
    if (fields >> skip >> skip >> skip) {  // root, mount point, mount options
      for (std::string tag; fields >> tag && tag != "-";)
        e.tags += (e.tags.empty() ? "" : " ") + tag;
    }
    if (tail >> e.fstype >> e.source >> e.options) {
      e.found = true;
      found = e;  // later lines are mounted on top of earlier ones
    }
  }
  return found;
}

std::string tmpfs_huge_option(std::string_view options) {
  const std::string all = "," + std::string(options) + ",";
  for (const char* v : {"always", "within_size"}) {
    if (all.find(std::string(",huge=") + v + ",") != std::string::npos) return v;
  }
  return {};
}

std::string shmem_enabled() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string all;
  if (!std::getline(in, all)) return {};
  const auto open = all.find('[');
  const auto close = all.find(']', open);
  if (open == std::string::npos || close == std::string::npos) return {};
  return all.substr(open + 1, close - open - 1);
}

bool may_mount() {
  constexpr int kCapSysAdmin = 21;
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "CapEff:") {
      unsigned long long caps = 0;
      in >> std::hex >> caps;
      return ((caps >> kCapSysAdmin) & 1) != 0;
    }
    in.ignore(4096, '\n');
  }
  return false;
}

bool sandboxed_mount_namespace(dev_t under) {
  struct stat mine {
  }, init{};
  if (::stat("/proc/self/ns/mnt", &mine) == 0 && ::stat("/proc/1/ns/mnt", &init) == 0) {
    return mine.st_dev != init.st_dev || mine.st_ino != init.st_ino;
  }
  const std::string tags = " " + mount_of(under).tags;
  return tags.find(" master:") != std::string::npos && tags.find(" shared:") == std::string::npos;
}

}  // namespace modelpool::broker
