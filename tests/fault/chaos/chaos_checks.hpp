// File: tests/fault/chaos/chaos_checks.hpp
//
// What the driver checks between a kill and the restart (the segment a dead
// broker left behind) and right after the restart (what was re-adopted), and
// the report those checks fill: counts for the summary and the problems.
#ifndef MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_CHECKS_HPP_
#define MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_CHECKS_HPP_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "chaos.hpp"
#include "fault_support.hpp"

namespace modelpool::chaos {

struct Report {
  int kills = 0, restarts = 0, client_kills = 0, admin_evictions = 0;
  int kills_mid_load = 0, loading_dropped = 0, ready_adopted = 0, ready_verified = 0;
  int kills_with_stranded_bytes = 0;
  std::uint64_t stranded_bytes = 0;
  int reloads = 0, selfchecks = 0, replaced = 0;
  // Kills that left a superseded generation a process still mapped (the
  // restart must keep it).
  int superseded_mapped = 0;
  // The end state, for the summary.
  std::uint64_t end_bytes_used = 0, pinned_baseline = 0, end_resident = 0, end_handles = 0;
  bool end_checked = false, lock_free = false;
  std::vector<std::string> problems;
  void fail(std::string what) { problems.push_back(std::move(what)); }
};

struct DeadSegment {
  std::vector<fault::CatalogRow> ready;
  int loading = 0;
  std::uint64_t stranded = 0;  // memory held outside every READY or LOADING extent
  // Slots of READY entries superseded by a newer READY generation of their
  // name that no process locks: a restart may drop them instead of adopting.
  std::set<std::uint32_t> droppable;
  int superseded_mapped = 0;  // superseded READY entries some process locks
};

// The segment of a killed broker: every READY entry's bytes hash to its
// checksum and to one known version of its file's, and READY extents are
// disjoint and in range. Two generations of one name may be READY (a
// superseded one a worker still maps).
DeadSegment inspect_dead_segment(const std::string& path,
                                 const std::map<std::string, Model>& models, Report& report);

// Right after a restart: every READY entry of `before` (but the droppable)
// is still READY in its slot with the same offset, size, generation,
// checksum and pin.
void check_readopted(const std::string& path, const DeadSegment& before, Report& report);

}  // namespace modelpool::chaos

#endif  // MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_CHECKS_HPP_
