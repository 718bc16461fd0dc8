// File: broker/server/reports.hpp
//
// What the Service's admin operations return: plain values that know
// nothing of the wire. The dispatcher encodes them into replies, and the
// metrics page renders the same stats (report_json.hpp).
#ifndef MODELPOOL_BROKER_SERVER_REPORTS_HPP_
#define MODELPOOL_BROKER_SERVER_REPORTS_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/origin/origins.hpp"
#include "broker/pool/pool.hpp"
#include "broker/server/process_info.hpp"
#include "broker/server/stats.hpp"
#include "broker/system_info.hpp"

namespace modelpool::broker {

// One file of a model of several files, as `list` shows it.
struct GroupFileRow {
  std::string name;   // in the model
  std::string entry;  // the pool entry holding it
  std::uint64_t size = 0;
  std::string format;
  bool resident = false;  // its entry is in the pool and ready
};

// A model of several files (a repository, an hf: snapshot, a split set).
struct GroupRow {
  std::string commit;
  std::vector<GroupFileRow> files;
  std::size_t refs = 0;  // handles on it
  bool pinned = false;   // every file pinned
  std::uint64_t accesses = 0;
};

// One entry of the pool, or one model of several files, as `list` and
// `stats` show it.
// A download from an origin in flight.
struct DownloadRow {
  std::string origin;  // the object's URL without credentials
  std::uint64_t bytes = 0, total = 0;
  double seconds = 0;  // since it started
};

struct ModelRow {
  EntryInfo entry;                // a group's: its name, size, state
  std::string shares;             // another name of a resident file: the name whose bytes it uses
  std::string member_of;          // a file of a model of several files: that model
  std::optional<GroupRow> group;  // a model of several files
  std::optional<DownloadRow> download;
};

// The origins and the disk tier (--origin, --disk-cache).
struct OriginReport {
  std::vector<std::string> origins;  // without credentials
  OriginCounters counters;
  std::optional<DiskTierStats> tier;
};

struct StatsReport {
  std::string pool;
  std::string version;  // modelpoold's
  std::int64_t pid = 0;
  ProcessInfo process;
  double uptime_s = 0;
  Stats counters;
  std::uint64_t evictions = 0;
  std::uint64_t bytes_evicted = 0;
  std::uint64_t bytes_used = 0;
  std::uint64_t bytes_budget = 0;
  std::uint64_t offset_space = 0;
  std::uint64_t offset_space_used = 0;
  std::uint64_t largest_free_extent = 0;
  std::size_t clients = 0;
  std::size_t handles = 0;
  std::size_t loads_in_flight = 0;
  std::size_t waiting_for_room = 0;
  MemInfo mem;
  std::uint64_t page_size = 0;
  std::string segment_path;
  std::string eviction_policy;
  std::vector<ModelRow> models;
  std::optional<OriginReport> origins;
};

// evict: the entry freed and the bytes it gave back.
struct Evicted {
  std::string model;
  std::uint64_t bytes = 0;
};

// pin / unpin.
struct PinState {
  std::string model;
  bool pinned = false;
};

// clear: how many entries were freed, and their bytes.
struct Cleared {
  std::size_t evicted = 0;
  std::uint64_t bytes = 0;
};

// selfcheck: the pool's and the catalog's invariants that do not hold.
struct SelfCheck {
  std::vector<std::string> problems;
  bool consistent() const { return problems.empty(); }
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_REPORTS_HPP_
