// File: broker/server/process_info.cc
//
// /proc/self/stat (proc(5)): fields 14 and 15 are utime and stime, 22
// starttime (clock ticks after boot), 23 vsize (bytes), 24 rss (pages).
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'. Boot time is /proc/stat's btime.
#include "broker/server/process_info.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace modelpool::broker {
namespace {

std::uint64_t boot_time_s() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      std::uint64_t t = 0;
      in >> t;
      return t;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

// The process's start: constant for its life, so /proc/stat is read once.
double start_time_s(std::uint64_t start_ticks, double hz) {
  static const double t =
      static_cast<double>(boot_time_s()) + static_cast<double>(start_ticks) / hz;
  return t;
}

std::uint64_t number(const std::string& s) {
  std::uint64_t n = 0;
  std::from_chars(s.data(), s.data() + s.size(), n);  // 0 when it is not one
  return n;
}

}  // namespace

ProcessInfo read_process_info() {
  ProcessInfo p;
  std::ifstream in("/proc/self/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (close != std::string::npos && ticks > 0 && page > 0) {
    std::istringstream fields(stat.substr(close + 1));
    std::string f;
    std::uint64_t utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    // Field 3 (state) is the first after ')'.
    for (int n = 3; n <= 24 && fields >> f; ++n) {
      if (n == 14) utime = number(f);
      if (n == 15) stime = number(f);
      if (n == 22) start = number(f);
      if (n == 23) vsize = number(f);
      if (n == 24) rss = number(f);
    }
    const auto hz = static_cast<double>(ticks);
    p.cpu_seconds = static_cast<double>(utime + stime) / hz;
    p.start_time_s = start_time_s(start, hz);
    p.virtual_bytes = vsize;
    p.resident_bytes = rss * static_cast<std::uint64_t>(page);
  }
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++p.open_fds;
  }
  if (p.open_fds > 0) --p.open_fds;  // the iterator's own descriptor
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) p.max_fds = lim.rlim_cur;
  return p;
}

}  // namespace modelpool::broker
