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

}  // namespace modelpool::layout
