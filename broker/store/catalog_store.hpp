// File: broker/store/catalog_store.hpp
//
// The one place where the pool's bookkeeping (Pool) and the segment (its
// catalog and its extents) change, and they change together. Every
// operation that creates, readies, pins or frees an entry also writes it to
// the catalog; every entry an operation frees has its catalog slot cleared
// and its extent punched before the operation returns. A restarted broker
// adopts what the catalog says, so a change made to one and not the other
// would be a catalog that lies after a restart: nothing above this class
// calls Segment::publish_* or Segment::release.
//
// Reads go to pool() and segment() directly. Freed entries are returned so
// the caller can log them and drop what it keeps about them; their bytes are
// already gone. Event-loop thread only, except reserve() and mapped(), which
// the loader threads call.
#ifndef MODELPOOL_BROKER_STORE_CATALOG_STORE_HPP_
#define MODELPOOL_BROKER_STORE_CATALOG_STORE_HPP_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/pool/pool.hpp"
#include "broker/store/segment.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

class CatalogStore {
 public:
  // Takes the segment; the pool is made from `config` (which must fit the
  // segment's geometry, see pool_config() in broker/startup.hpp). Nothing a
  // worker maps is freed: the pool asks the segment (Segment::mapped).
  CatalogStore(std::unique_ptr<Segment> segment, const PoolConfig& config);
  CatalogStore(const CatalogStore&) = delete;
  CatalogStore& operator=(const CatalogStore&) = delete;

  const Pool& pool() const { return pool_; }
  const Segment& segment() const { return *segment_; }
  // Any thread: the loader takes an extent's pages as it fills it.
  Status reserve(std::uint64_t offset, std::uint64_t len) { return segment_->reserve(offset, len); }

  // A new LOADING entry (Pool::begin_load), in the catalog with its pin;
  // `evicted` are the entries freed to make room, already freed.
  Result<Reservation> begin_load(std::string_view name, const layout::SourceIdentity& source,
                                 std::uint64_t size, std::int64_t now_ns);
  // `name` shares `base`'s copy (Pool::alias). Aliases hold no slot; the pin
  // of the bytes in the catalog already counts theirs.
  Result<Reservation> alias(std::string_view name, EntryId base, std::int64_t now_ns);
  // The LOADING entry `id` holds what `base` holds (Pool::fold): its slot
  // cleared and its extent punched, its name an alias of `base`.
  Result<Reservation> fold(EntryId id, EntryId base, std::int64_t now_ns);
  // LOADING -> READY in both. Returns the entry (nullptr for an unknown id).
  const EntryInfo* finish_load(EntryId id, std::uint64_t checksum, layout::Format format,
                               double load_seconds);
  // A LOADING entry that failed: gone from the pool, its slot cleared and its
  // extent punched. Returns it (id 0 when `id` was not LOADING).
  EntryInfo fail_load(EntryId id);
  // Pins or unpins the current entry of `name`; the catalog slot of its
  // bytes says whether any name pins them. kNotFound when there is none.
  Status set_pinned(std::string_view name, bool pinned);

  void add_ref(EntryId id, std::int64_t now_ns) { pool_.add_ref(id, now_ns); }
  bool set_evictable_after(EntryId id, std::int64_t not_before_ns) {
    return pool_.set_evictable_after(id, not_before_ns);
  }
  // Each of these frees what the pool lets go of and returns it.
  std::vector<EntryInfo> release_ref(EntryId id);
  Result<EntryInfo> evict(std::string_view name);
  std::vector<EntryInfo> clear();
  std::vector<EntryInfo> enforce_watermark();
  std::vector<EntryInfo> reap();

  // After a restart: every READY entry the catalog of an adopted segment
  // holds becomes the pool's, newest generation of a name first, protected
  // from eviction for room until `evictable_after_ns`. What the pool refuses
  // and is safe to free (a superseded generation no worker maps, an invalid
  // entry) is freed; what overlaps a kept entry is left alone.
  struct Adoption {
    std::size_t kept = 0;
    std::uint64_t bytes = 0;  // the kept entries' footprints
    struct Refused {
      std::string name;
      std::uint64_t generation;
      std::string why;
    };
    std::vector<Refused> refused;
  };
  Adoption adopt(std::int64_t evictable_after_ns);

 private:
  // Clears the slot and punches the extent of each entry that holds bytes
  // (an alias holds none), and hands the entries back.
  std::vector<EntryInfo> free(std::vector<EntryInfo> entries);
  void free_one(const EntryInfo& e);
  void free_bytes(std::uint32_t slot, std::uint64_t offset, std::uint64_t extent);

  std::unique_ptr<Segment> segment_;
  Pool pool_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_CATALOG_STORE_HPP_
