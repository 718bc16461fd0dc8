// File: shm/layout/paths.cc
#include "shm/layout/paths.hpp"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace modelpool::layout {

std::string default_run_dir() {
  if (const char* d = std::getenv("MODELPOOL_RUN_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    return std::string(x) + "/modelpool";
  }
  return "/tmp/modelpool-" + std::to_string(::getuid());
}

std::string worker_socket_path(std::string_view run_dir, std::string_view pool) {
  return std::string(run_dir) + "/" + std::string(pool) + ".sock";
}

std::string admin_socket_path(std::string_view run_dir, std::string_view pool) {
  return std::string(run_dir) + "/" + std::string(pool) + ".admin.sock";
}

std::string lock_path(std::string_view run_dir, std::string_view pool) {
  return std::string(run_dir) + "/" + std::string(pool) + ".lock";
}

std::string segment_path(std::string_view segment_dir, std::string_view pool) {
  if (segment_dir.empty()) return "/dev/shm/" + std::string(pool);
  return std::string(segment_dir) + "/" + std::string(pool) + ".segment";
}

Status validate_pool_name(std::string_view pool) {
  if (pool.empty() || pool.size() > 48 || pool.front() == '.') {
    return error(ErrorCode::kInvalidName,
                 "pool name must be 1-48 characters, not starting with '.'");
  }
  for (char c : pool) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '_' && c != '-') {
      return error(ErrorCode::kInvalidName,
                   "pool name may only contain letters, digits, '.', '_' and '-'");
    }
  }
  return {};
}

Result<std::uint64_t> parse_size(std::string_view text) {
  auto bad = [&] {
    std::string msg = "\"";
    msg.append(text);
    msg.append("\" is not a size (examples: 512MiB, 4G, 1073741824)");
    return error(ErrorCode::kBadRequest, std::move(msg));
  };
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0) return bad();
  double number = 0;
  try {
    number = std::stod(std::string(text.substr(0, i)));
  } catch (...) {
    return bad();
  }
  std::string unit(text.substr(i));
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "K" || unit == "KB" || unit == "KIB") {
    mult = 1024.0;
  } else if (unit == "M" || unit == "MB" || unit == "MIB") {
    mult = 1024.0 * 1024;
  } else if (unit == "G" || unit == "GB" || unit == "GIB") {
    mult = 1024.0 * 1024 * 1024;
  } else if (unit == "T" || unit == "TB" || unit == "TIB") {
    mult = 1024.0 * 1024 * 1024 * 1024;
  } else {
    return bad();
  }
  double bytes = std::floor(number * mult);
  if (!(bytes >= 0) || bytes > 9.0e18) return bad();
  return static_cast<std::uint64_t>(bytes);
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

}  // namespace modelpool::layout
