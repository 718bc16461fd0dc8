// File: tests/hugepages/huge_env.cc
//
// Scratch huge-page filesystems, the kernel's huge page counters and smaps
// readings for the huge-page tests (see huge_env.hpp).
#include "huge_env.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
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

bool write_number(const std::string& path, std::uint64_t v) {
  std::ofstream out(path);
  out << v << '\n';
  out.flush();
  return out.good();
}

std::uint64_t nr_hugepages() { return read_number(std::string(kPoolDir) + "nr_hugepages"); }

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

std::unique_ptr<HugePageReservation> HugePageReservation::add(std::uint64_t pages,
                                                              std::string* why) {
  if (::geteuid() != 0) {
    *why = "adding huge pages to the kernel's pool needs root";
    return nullptr;
  }
  if (::access(kPoolDir, F_OK) != 0) {
    *why = std::string("this kernel has no 2 MiB huge pages (") + kPoolDir + " missing)";
    return nullptr;
  }
  const std::uint64_t before = nr_hugepages();
  const std::string nr = std::string(kPoolDir) + "nr_hugepages";
  write_number(nr, before + pages);
  const std::uint64_t now = nr_hugepages();
  if (now < before + pages) {
    const std::uint64_t got = now > before ? now - before : 0;
    write_number(nr, now - got);
    *why = "the kernel added only " + std::to_string(got) + " of " + std::to_string(pages) +
           " huge pages (too little free or too fragmented memory)";
    return nullptr;
  }
  return std::unique_ptr<HugePageReservation>(new HugePageReservation(pages));
}

HugePageReservation::~HugePageReservation() {
  const std::uint64_t now = nr_hugepages();
  write_number(std::string(kPoolDir) + "nr_hugepages", now > pages_ ? now - pages_ : 0);
}

std::unique_ptr<HugeMount> HugeMount::open(HugeKind kind, std::uint64_t bytes,
                                           std::uint64_t pages_to_add, std::string* why) {
  if (::geteuid() != 0) {
    *why = "mounting a " + to_string(kind) + " needs root";
    return nullptr;
  }
  std::unique_ptr<HugeMount> m(new HugeMount());
  if (kind == HugeKind::kHugetlbfs && pages_to_add > 0) {
    m->pages_ = HugePageReservation::add(pages_to_add, why);
    if (!m->pages_) return nullptr;
  }
  std::string templ = "/tmp/mp-huge-" + to_string(kind) + "-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    *why = std::string("mkdtemp: ") + std::strerror(errno);
    return nullptr;
  }
  m->dir_ = templ;
  std::string options = kind == HugeKind::kTmpfs ? "huge=always,mode=0755" : "pagesize=2M";
  if (bytes != 0) options += ",size=" + std::to_string(bytes);
  const char* fstype = kind == HugeKind::kTmpfs ? "tmpfs" : "hugetlbfs";
  if (::mount(fstype, m->dir_.c_str(), fstype, MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    *why = "mount -t " + std::string(fstype) + " -o " + options + ": " + std::strerror(errno);
    return nullptr;  // the destructor removes the directory and gives the pages back
  }
  m->mounted_ = true;
  return m;
}

HugeMount::~HugeMount() {
  if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  if (!dir_.empty()) ::rmdir(dir_.c_str());
  pages_.reset();  // after the unmount: the pages are free again only then
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
