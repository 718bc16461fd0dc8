// File: broker/config.hpp
//
// modelpoold's configuration: one struct of settings and one table of
// options (name, default, bounds, help) that parses the command line and a
// TOML file whose keys are the long options (--config), prints --help and
// --print-config, and answers the `config` admin op (after redis config.c
// and memcached's `struct settings`). Not thread-safe; built once at start.
#ifndef MODELPOOL_BROKER_CONFIG_HPP_
#define MODELPOOL_BROKER_CONFIG_HPP_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "broker/pool/pool_config.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

struct Config {
  std::string config_file;         // --config FILE ("" = none)
  std::string models_dir;          // --models (required)
  std::string pool = "modelpool";  // --name
  std::string run_dir;             // --run-dir ("" = default)
  std::string segment_dir;         // --segment-dir ("" = /dev/shm)
  // --huge-tmpfs auto|no|DIR: where the segment goes without --segment-dir
  // (broker/segment_home.hpp).
  std::string huge_tmpfs = "auto";
  // --memory (policy.budget; 0 = 70% of MemAvailable), --high-watermark,
  // --low-watermark, --max-model-size, --eviction. The segment's geometry in
  // it is filled in at start (pool_config() in broker/startup.hpp).
  PoolConfig policy;
  std::vector<std::string> preload;                 // --preload a,b
  std::string manifest;                             // --manifest FILE
  std::string hf_cache;                             // --hf-cache DIR ("" = default_hf_cache())
  std::uint64_t repo_max_small_file = 16ULL << 20;  // --repo-max-small-file
  // Remote origins and the disk tier (broker/origin/origins.hpp).
  std::vector<std::string> origins;         // --origin URL (repeatable), tried in order
  std::string origin_ca;                    // --origin-ca FILE (PEM), added to the system's CAs
  std::uint64_t origin_connections = 4;     // ranged GETs in flight per download
  std::uint64_t origin_part = 16ULL << 20;  // smallest range worth a GET of its own
  std::uint64_t origin_retries = 4;         // per request, after the first attempt
  std::uint64_t origin_timeout_s = 30;      // an attempt below 1 KiB/s this long ends
  std::string disk_cache;                   // --disk-cache DIR ("" = none)
  std::uint64_t disk_budget = 0;            // --disk-budget (required with --disk-cache)
  std::uint64_t offset_space_factor = 16;
  std::uint64_t catalog_capacity = 16384;
  std::uint64_t loader_threads = 1;
  std::uint64_t queue_depth = 4;
  std::uint64_t chunk_bytes = 4ULL << 20;
  bool direct_io = false;
  bool remove_on_exit = false;
  bool recreate = false;
  std::uint64_t adopt_grace_s = 30;
  std::uint64_t max_clients = 4096;
  std::uint64_t max_outbound_bytes = 4ULL << 20;  // per connection
  std::uint64_t max_handles_per_client = 65536;
  std::uint64_t max_waiting_per_client = 16384;  // acquires queued for room
  std::string group;                             // --group NAME for the worker socket
  std::string metrics_addr;                      // --metrics-addr HOST:PORT
  std::uint64_t metrics_max_clients = 64;
  std::uint64_t metrics_idle_timeout_s = 10;
  std::string log_level = "info";
  std::string log_file;
  std::string log_format = "text";  // text, json or journal (broker/logging.hpp)
};

enum class ParseOutcome { kRun, kHelp, kVersion, kPrintConfig };

// Parses argv into `config` and validates bounds. The file of `--config FILE`
// (else `default_config_file`, when not null or empty: $MODELPOOL_CONFIG) is
// read first; options on the command line override its keys wherever they
// stand. Errors name the option, or the file, line and key.
Result<ParseOutcome> parse_command_line(int argc, const char* const* argv, Config* config,
                                        const char* default_config_file = nullptr);

// The --help text, generated from the option table.
std::string help_text();

// Every option and its effective value, for the `config` admin op.
nlohmann::json to_json(const Config& config);

// The configuration as a TOML file that --config reads back to the same
// values (--print-config). Options left to the broker's choice at start
// (--memory, an empty --run-dir, ...) are shown commented out.
std::string to_toml(const Config& config);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_CONFIG_HPP_
