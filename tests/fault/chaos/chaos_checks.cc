// File: tests/fault/chaos/chaos_checks.cc
#include "chaos_checks.hpp"

#include <algorithm>

#include "chaos_lock.hpp"

namespace modelpool::chaos {

using fault::CatalogRow;
using layout::EntryState;

DeadSegment inspect_dead_segment(const std::string& path,
                                 const std::map<std::string, Model>& models, Report& report) {
  DeadSegment dead;
  fault::SegmentView v(path);
  // A LOADING entry's pages are reserved as its load goes (and dropped at
  // restart); a READY one must hold all of its pages, and nothing past them.
  std::uint64_t live_bytes = 0;
  for (CatalogRow& r : v.rows()) {
    if (r.state == EntryState::kLoading) {
      ++dead.loading;
      live_bytes += v.held_bytes(r.offset, r.extent_size);
      continue;
    }
    live_bytes += r.pages();
    if (r.state == EntryState::kReady && v.held_bytes(r.offset, r.pages()) < r.pages()) {
      report.fail("READY entry " + r.name + "'s pages are not all reserved");
    }
    if (r.state == EntryState::kReady && v.held_bytes(r.offset, r.extent_size) > r.pages()) {
      report.fail("READY entry " + r.name + " holds memory past its last page");
    }
    const std::string who = "READY entry " + r.name + " generation " + std::to_string(r.generation);
    if (r.state != EntryState::kReady) {
      report.fail("catalog slot " + std::to_string(r.slot) + " has an unknown state");
      continue;
    }
    auto m = models.find(r.name);
    if (m == models.end()) {
      report.fail(who + ": no such model file");
    } else if (r.size != m->second.size || r.offset < v.header().data_offset ||
               r.offset + r.extent_size > v.header().segment_size || r.extent_size < r.size) {
      report.fail(who + ": bad extent (offset " + std::to_string(r.offset) + ", size " +
                  std::to_string(r.size) + ", extent " + std::to_string(r.extent_size) + ")");
    } else if (const std::uint64_t h = v.hash(r.offset, r.size);
               h != r.checksum || (h != m->second.checksum &&
                                   (m->second.alt_checksum == 0 || h != m->second.alt_checksum))) {
      report.fail(
          who + ": bytes hash to " + fault::hex16(h) + ", catalog says " +
          fault::hex16(r.checksum) + ", file " + fault::hex16(m->second.checksum) +
          (m->second.alt_checksum != 0 ? " or " + fault::hex16(m->second.alt_checksum) : ""));
    } else {
      ++report.ready_verified;
    }
    dead.ready.push_back(std::move(r));
  }
  std::sort(dead.ready.begin(), dead.ready.end(),
            [](const CatalogRow& a, const CatalogRow& b) { return a.offset < b.offset; });
  for (std::size_t i = 1; i < dead.ready.size(); ++i) {
    const CatalogRow& a = dead.ready[i - 1];
    if (a.offset + a.extent_size > dead.ready[i].offset) {
      report.fail("READY entries " + a.name + " and " + dead.ready[i].name + " overlap");
    }
  }
  for (const CatalogRow& r : dead.ready) {
    const bool superseded = std::any_of(
        dead.ready.begin(), dead.ready.end(),
        [&](const CatalogRow& o) { return o.name == r.name && o.generation > r.generation; });
    if (!superseded) continue;
    if (extent_locked(path, r.offset, r.size)) {
      ++dead.superseded_mapped;
    } else {
      dead.droppable.insert(r.slot);
    }
  }
  const std::uint64_t held = v.held_bytes();
  dead.stranded = held > live_bytes ? held - live_bytes : 0;
  return dead;
}

void check_readopted(const std::string& path, const DeadSegment& before, Report& report) {
  fault::SegmentView v(path);
  const auto rows = v.rows();
  for (const CatalogRow& b : before.ready) {
    if (before.droppable.count(b.slot) != 0) continue;
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const CatalogRow& r) { return r.slot == b.slot; });
    const bool same = it != rows.end() && it->state == EntryState::kReady && it->name == b.name &&
                      it->generation == b.generation && it->offset == b.offset &&
                      it->size == b.size && it->checksum == b.checksum && it->pinned == b.pinned;
    if (!same) {
      report.fail("after a restart, " + b.name + " generation " + std::to_string(b.generation) +
                  " is not re-adopted in place (slot " + std::to_string(b.slot) + ")");
    }
  }
}

}  // namespace modelpool::chaos
