// File: clientlib/ctl/options.hpp
//
// modelpoolctl's command line: global options, one subcommand (an admin op)
// and its argument. Parsing is pure; a usage mistake comes back as a
// bad_request Status whose message is meant for the user.
#ifndef MODELPOOL_CLIENTLIB_CTL_OPTIONS_HPP_
#define MODELPOOL_CLIENTLIB_CTL_OPTIONS_HPP_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shm/status.hpp"

namespace modelpool::ctl {

// How long modelpoolctl waits for the broker by default: a broker that
// accepts and never answers is reported (exit 3) instead of hanging a script.
inline constexpr std::chrono::milliseconds kDefaultTimeout{5000};

struct Options {
  std::string run_dir;  // empty: layout::default_run_dir()
  std::string pool;     // empty: layout::kDefaultPool
  std::string socket;   // overrides run dir and pool
  bool json = false;
  // Bounds connecting, each send and each wait for a reply; nullopt: no limit
  // (--timeout 0). `timeout_given`: set on the command line, so it also bounds
  // a load (which otherwise waits as long as the load takes).
  std::optional<std::chrono::milliseconds> timeout = kDefaultTimeout;
  bool timeout_given = false;
  bool help = false;
  bool version = false;
  std::string command;  // "stats", "load", ...
  std::string model;    // for load, evict, pin, unpin
  bool pin = false;     // load --pin
  // stats/list --watch D: print every D; --count N: N times (0: until killed).
  std::optional<std::chrono::milliseconds> watch;
  std::uint64_t count = 0;
};

// Parses argv[1..]. Options may come before or after the subcommand.
Result<Options> parse_options(const std::vector<std::string>& args);

// The pool name to report (--pool or the default).
std::string pool_name(const Options& options);
// The admin socket to connect to.
std::string admin_socket(const Options& options);

std::string usage();
// "modelpoolctl VERSION\n".
std::string version_text();

// True when `args` ask for --json (scanned before parsing, so that a usage
// mistake can be reported as JSON too).
bool wants_json(const std::vector<std::string>& args);

}  // namespace modelpool::ctl

#endif  // MODELPOOL_CLIENTLIB_CTL_OPTIONS_HPP_
