// File: broker/pool/entry_record.hpp
//
// What the segment's catalog keeps of an entry: one record for the pool's
// entries (EntryInfo extends it), a catalog slot as published and as read
// back by the self-check, and what a restarted broker adopts. The catalog's
// binary form is layout::CatalogEntry (shm/layout/segment_layout.hpp); this
// is its broker-side value.
#ifndef MODELPOOL_BROKER_POOL_ENTRY_RECORD_HPP_
#define MODELPOOL_BROKER_POOL_ENTRY_RECORD_HPP_

#include <cstdint>
#include <string>

#include "shm/layout/segment_layout.hpp"

namespace modelpool::broker {

struct EntryRecord {
  std::uint32_t slot = 0;  // catalog slot
  layout::EntryState state = layout::EntryState::kLoading;
  std::string name;
  std::uint64_t generation = 0;  // per name: 1, 2, ... increments when the source changes
  std::uint64_t offset = 0, size = 0, extent_size = 0, checksum = 0;
  layout::Format format = layout::Format::kRaw;
  layout::SourceIdentity source;  // the file the bytes were read from
  bool pinned = false;
  std::int64_t loaded_ns = 0;  // unix time it became READY
  double load_seconds = 0;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_POOL_ENTRY_RECORD_HPP_
