// File: shm/layout/paths.hpp
//
// Where a pool's files live, so the broker, the client library and
// modelpoolctl agree without talking: the run directory and its sockets and
// lock, and the segment's path. Pure functions of their arguments and the
// environment (XDG_RUNTIME_DIR, MODELPOOL_RUN_DIR).
#ifndef MODELPOOL_SHM_LAYOUT_PATHS_HPP_
#define MODELPOOL_SHM_LAYOUT_PATHS_HPP_

#include <string>
#include <string_view>

#include "shm/status.hpp"

namespace modelpool::layout {

inline constexpr std::string_view kDefaultPool = "modelpool";

// $MODELPOOL_RUN_DIR, else $XDG_RUNTIME_DIR/modelpool, else /tmp/modelpool-$UID.
std::string default_run_dir();
std::string worker_socket_path(std::string_view run_dir, std::string_view pool);
std::string admin_socket_path(std::string_view run_dir, std::string_view pool);
std::string lock_path(std::string_view run_dir, std::string_view pool);
// The segment file: "/dev/shm/POOL" by default, "DIR/POOL.segment" with --segment-dir.
std::string segment_path(std::string_view segment_dir, std::string_view pool);

// Pool names are [A-Za-z0-9._-]{1,48}, not starting with '.'.
Status validate_pool_name(std::string_view pool);

}  // namespace modelpool::layout

#endif  // MODELPOOL_SHM_LAYOUT_PATHS_HPP_
