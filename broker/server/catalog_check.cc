// File: broker/server/catalog_check.cc
#include "broker/server/catalog_check.hpp"

#include <unordered_set>

#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {

namespace {

using layout::EntryState;

constexpr std::size_t kMaxProblems = 20;  // keeps the reply inside one frame

std::string state_name(EntryState s) {
  switch (s) {
    case EntryState::kFree:
      return "free";
    case EntryState::kLoading:
      return "loading";
    case EntryState::kReady:
      return "ready";
  }
  return "state " + std::to_string(static_cast<std::uint32_t>(s));
}

// The first field in which slot `v` differs from pool entry `e`, or "".
std::string first_difference(const EntryInfo& e, const EntryRecord& v) {
  if (v.state != e.state) {
    return "state " + state_name(v.state) + ", pool says " + state_name(e.state);
  }
  if (v.name != e.name) return "name \"" + v.name + "\"";
  auto differs = [](const char* what, std::uint64_t catalog, std::uint64_t pool) {
    return std::string(what) + " " + std::to_string(catalog) + ", pool says " +
           std::to_string(pool);
  };
  if (v.generation != e.generation) return differs("generation", v.generation, e.generation);
  if (v.offset != e.offset) return differs("offset", v.offset, e.offset);
  if (v.size != e.size) return differs("size", v.size, e.size);
  if (v.extent_size != e.extent_size) return differs("extent size", v.extent_size, e.extent_size);
  if (v.pinned != e.holds_pin()) {  // pinned itself or through a name that shares it
    return std::string("pinned ") + (v.pinned ? "yes" : "no") + ", pool says " +
           (e.holds_pin() ? "yes" : "no");
  }
  if (e.state != EntryState::kReady) return "";
  if (v.checksum != e.checksum) return differs("checksum", v.checksum, e.checksum);
  if (v.format != e.format) return "format " + std::string(layout::to_string(v.format));
  return "";
}

// A READY entry holds its footprint (its size in whole pages) in full: those
// pages were written or reserved before it became READY; the rest of its
// extent is never allocated, and a freed extent is punched at once. A LOADING
// entry fills as its load's writes land, so it holds anything from nothing to
// its whole footprint. The data region therefore holds at least the READY
// footprints and at most every entry's footprint.
void check_memory_held(const Pool& pool, const Segment& segment,
                       std::vector<std::string>& problems) {
  auto held = segment.data_bytes_held();
  if (!held.ok()) {
    if (held.status().code() != ErrorCode::kNotFound) problems.push_back(held.status().message());
    return;
  }
  const std::uint64_t used = pool.bytes_used();
  std::uint64_t ready = 0;
  for (const EntryInfo* e : pool.entries()) {
    if (e->state == EntryState::kReady) ready += e->footprint;
  }
  if (*held > used) {
    problems.push_back("the segment holds " + units::format_bytes(*held - used) +
                       " of memory outside every extent (leaked: " + units::format_bytes(*held) +
                       " held, extents " + units::format_bytes(used) + ")");
  } else if (*held < ready) {
    problems.push_back("the segment holds " + units::format_bytes(*held) +
                       " but the ready extents need " + units::format_bytes(ready) +
                       ": part of a ready extent was punched");
  }
}

}  // namespace

std::vector<std::string> check_catalog(const Pool& pool, const Segment& segment) {
  std::vector<std::string> problems;
  std::unordered_set<std::uint32_t> slots;
  for (const EntryInfo* e : pool.entries()) {
    if (e->base != 0) continue;  // an alias: its slot is its base's
    slots.insert(e->slot);
    if (problems.size() >= kMaxProblems) continue;
    const std::string diff = first_difference(*e, segment.slot_view(e->slot));
    if (!diff.empty()) {
      problems.push_back("catalog slot " + std::to_string(e->slot) + " of \"" + e->name +
                         "\" generation " + std::to_string(e->generation) +
                         " disagrees with the pool: " + diff);
    }
  }
  for (std::uint32_t slot = 0; slot < segment.catalog_capacity() && problems.size() < kMaxProblems;
       ++slot) {
    if (slots.count(slot) != 0) continue;
    const EntryRecord v = segment.slot_view(slot);
    if (v.state != EntryState::kFree) {
      problems.push_back("catalog slot " + std::to_string(slot) + " holds " + state_name(v.state) +
                         " \"" + v.name + "\" generation " + std::to_string(v.generation) +
                         " that the pool does not know (a restart would adopt it)");
    }
  }
  check_memory_held(pool, segment, problems);
  return problems;
}

}  // namespace modelpool::broker
