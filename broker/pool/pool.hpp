// File: broker/pool/pool.hpp
//
// The pool's bookkeeping, with no sockets, files or threads: which entries
// exist, where their extents and catalog slots are, who references them, what
// fits in the memory budget and what to evict. The server drives it and does
// the I/O the results call for; every call is synchronous and cheap.
//
// Lifecycle of an entry: begin_load() reserves an extent and a slot (LOADING)
// -> finish_load() (READY) or fail_load() (gone). add_ref()/release_ref()
// count handles. Entries leave the pool by eviction (policy order, for room
// or above the high watermark), by admin evict()/clear(), or — for an old
// generation that a newer one replaced — at its last release_ref().
//
// Every call that removes entries returns them (EntryInfo copies): the caller
// clears their catalog slots and punches their extents. The extents are free
// in the allocator as soon as the call returns, so do that before the new
// entry's load writes and before the next begin_load() (either may be placed
// over them).
//
// Guarantees: referenced, pinned and LOADING entries are never evicted, and no
// entry's extent ever moves. Nor is an entry that a process outside the
// broker's bookkeeping still maps (the mapped probe, set_mapped_probe(): a
// worker's byte-range lock that survived a broker restart): it is never
// returned for freeing, whatever its refs; a superseded one is *retained*
// (kept, not current) until reap() finds it unmapped. A failed begin_load() changes nothing. A new
// extent overlaps an extent returned for freeing in the same call only when
// the offset space had no other room for it.
//
// Not thread-safe: one owner (the event loop). EntryInfo pointers returned by
// find_current()/get()/entries() stay valid until that entry is removed.
#ifndef MODELPOOL_BROKER_POOL_POOL_HPP_
#define MODELPOOL_BROKER_POOL_POOL_HPP_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/pool/catalog_slots.hpp"
#include "broker/pool/entry_record.hpp"
#include "broker/pool/eviction_policy.hpp"
#include "broker/pool/extent_allocator.hpp"
#include "broker/pool/pool_config.hpp"
#include "shm/layout/segment_layout.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// An entry of the pool: its catalog record and what only the running
// broker knows of it.
struct EntryInfo : EntryRecord {
  EntryId id = 0;  // unique per load, never reused; 0 = no entry
  // Memory the entry holds and the budget counts: size rounded up to the
  // page size. extent_size (size rounded up to the alignment) is offset
  // space only: the pages past the footprint are never allocated.
  std::uint64_t footprint = 0;
  std::uint32_t refs = 0;
  bool current = true;  // false once a newer generation exists (freed at last release)
  // Not current, no refs, but mapped by a process the broker cannot see
  // (the mapped probe): kept until reap() finds it unmapped.
  bool retained = false;
  std::uint64_t accesses = 0;
  std::int64_t last_access_ns = 0;
  std::int64_t evictable_after_ns = 0;  // grace period: not evicted for room before this
  // An alias: a name (a symlink, a manifest alias, another path) whose file
  // is the one entry `base` already holds, or whose file's bytes were found
  // equal to base's once loaded (Pool::fold; its `source` is then its own).
  // It shares base's bytes, extent and catalog slot, holds no footprint of
  // its own, and each of its refs is one on base too. 0 for an entry that
  // holds its own bytes.
  EntryId base = 0;
  std::uint32_t alias_pins = 0;  // of an entry with bytes: its current aliases that are pinned
  std::uint32_t alias_refs = 0;  // of an entry with bytes: the refs in `refs` taken through aliases
  // Pinned itself or through an alias: the pin its bytes (and catalog slot) carry.
  bool holds_pin() const { return pinned || alias_pins > 0; }
};

struct Reservation {
  EntryInfo entry;                 // the new LOADING entry
  std::vector<EntryInfo> evicted;  // clear their slots and punch their extents
};

// True when a process still maps `entry`'s bytes whatever the pool's refs
// say (broker/store: an OFD read lock a worker holds on its extent).
using MappedProbe = std::function<bool(const EntryInfo& entry)>;

class Pool {
 public:
  // An unknown `eviction` name falls back to "lru" (config().eviction then
  // says "lru"); use validate_config() to refuse bad configs up front.
  explicit Pool(PoolConfig config);

  // ok, or kBadRequest saying which field is wrong (zero budget, watermarks
  // not 0 < low <= high <= 1, unknown policy, empty offset space, zero
  // alignment, page size or catalog capacity, or an alignment that is not
  // a multiple of the page size).
  static Status validate_config(const PoolConfig& config);

  const PoolConfig& config() const { return config_; }

  // Consulted before an entry with no refs is evicted, dropped or reclaimed
  // (never on the acquire path). Without one, nothing is mapped outside.
  void set_mapped_probe(MappedProbe probe) { mapped_ = std::move(probe); }

  // The current generation of `name` (LOADING or READY), or nullptr.
  const EntryInfo* find_current(std::string_view name) const;
  // The current entry holding its own bytes (LOADING or READY) whose source
  // is `source`, or nullptr: the copy another name of that file can share.
  const EntryInfo* find_resident(const layout::SourceIdentity& source) const;
  const EntryInfo* get(EntryId id) const;

  // Reserves room for a new LOADING entry of `name`. Errors, all leaving the
  // pool unchanged:
  //   kInvalidName  `name` is empty or longer than layout::kMaxNameBytes.
  //   kTooLarge     size > max_model_size, or its footprint > budget.
  //   kPoolFull     not enough idle unpinned entries (past their grace
  //                 period) to evict for room in the budget, a catalog slot
  //                 or room in the offset space.
  //   kInternal     a current entry of `name` is LOADING, or READY with the
  //                 same source (caller should have used it).
  // Evicts idle entries in policy order until the footprint fits the budget
  // and the offset space has room for the extent. If
  // the current entry of `name` has another source, the new entry gets its
  // generation + 1 and its pin, and the old one stops being current (and is
  // in `evicted` at once when it has no refs).
  Result<Reservation> begin_load(std::string_view name, const layout::SourceIdentity& source,
                                 std::uint64_t size, std::int64_t now_ns);
  // Makes `name` an alias of `base` (READY, current, holding its own bytes):
  // one resident copy per file, whatever names reach it. The alias gets the
  // next generation of `name` when its source differs from the last one,
  // `name`'s previous pin, and no refs; the previous current entry of `name`
  // is superseded as by begin_load (`evicted` has it when it is freed now).
  // Errors, pool unchanged: kInvalidName (bad name), kInternal (`base` is
  // not such an entry, is `name` itself, or `name` is already current with
  // that source).
  Result<Reservation> alias(std::string_view name, EntryId base, std::int64_t now_ns);
  // The LOADING entry `id` turned out to hold the same bytes as `base`
  // (READY, current, holding its own bytes, the same size): `id` goes (in
  // `evicted`, its extent and slot to free) and its name becomes an alias of
  // `base` with its own source, generation and pin. One copy per content,
  // whatever files it came from. Errors, pool unchanged: kInternal when
  // either entry is not as described or `id` has refs.
  Result<Reservation> fold(EntryId id, EntryId base, std::int64_t now_ns);
  // LOADING -> READY. Ignored for unknown ids or entries not LOADING.
  void finish_load(EntryId id, std::uint64_t checksum, layout::Format format, double load_seconds);
  // Removes a LOADING entry (refs taken by waiters go with it) and returns it
  // so the caller frees its extent and slot; an EntryInfo with id 0 if `id` is
  // unknown or not LOADING.
  EntryInfo fail_load(EntryId id);

  // One more handle on `id`: counts an access and tells the policy. Ignored
  // for unknown ids.
  void add_ref(EntryId id, std::int64_t now_ns);
  // Drops one handle. Returns the entries to free now: `id` itself when it is
  // no longer current and this was its last ref. Never underflows.
  std::vector<EntryInfo> release_ref(EntryId id);

  // Admin eviction of the current entry of `name` (grace periods do not
  // apply). kNotFound if none; kForbidden "is loading", "is in use by N
  // handles", "is pinned" or "is still mapped by a worker".
  Result<EntryInfo> evict(std::string_view name);
  // Evicts every idle, unpinned, READY current entry that no worker maps
  // (grace does not apply).
  std::vector<EntryInfo> clear();
  // kNotFound if `name` has no current entry.
  Status set_pinned(std::string_view name, bool pinned);
  // Above the high watermark, evicts idle entries past their grace period in
  // policy order until usage is at or below the low watermark (or nothing
  // more can go). Without `now_ns`, the latest time any call passed is used.
  std::vector<EntryInfo> enforce_watermark();
  std::vector<EntryInfo> enforce_watermark(std::int64_t now_ns);
  // Protects `id` from eviction for room/watermark until `not_before_ns`
  // (e.g. adopted entries after a restart). False for unknown ids.
  bool set_evictable_after(EntryId id, std::int64_t not_before_ns);

  // Re-adoption after a restart: takes `ready_entry`'s extent and slot as
  // they are in the catalog; it becomes the current entry of its name with a
  // new id, no refs, its footprint computed from its size, and its other
  // fields (generation, pin, stats) kept.
  // Adopt the highest generation of a name first. Errors, pool unchanged:
  //   kBadRequest   the entry is not READY.
  //   kInvalidName  bad name.
  //   kForbidden    its name already has a current entry (a superseded
  //                 generation) and no worker maps it: safe to clear its
  //                 slot and punch its extent. A superseded generation that
  //                 a worker still maps is adopted as retained instead.
  //   kInternal     its slot or extent is out of range or already taken (do
  //                 NOT punch: the bytes may belong to an adopted entry).
  // Adopted bytes may exceed the budget; enforce_watermark() fixes that.
  Status adopt(const EntryInfo& ready_entry);

  // Frees the retained entries that no process maps any more; the caller
  // clears their slots and punches their extents.
  std::vector<EntryInfo> reap();
  std::size_t retained_count() const { return retained_; }

  // All entries (LOADING and READY, current or not), sorted by name, then
  // generation.
  std::vector<const EntryInfo*> entries() const;
  std::size_t entry_count() const { return entries_.size(); }

  std::uint64_t bytes_used() const { return bytes_used_; }  // footprints of all entries
  // Bytes of memory an entry of `size` bytes holds: size rounded up to the page size.
  std::uint64_t footprint_for(std::uint64_t size) const;
  std::uint64_t budget() const { return config_.budget; }
  std::uint64_t high_watermark_bytes() const;
  std::uint64_t low_watermark_bytes() const;
  std::uint64_t largest_free_extent() const { return allocator_.largest_free(); }
  // The budget's room now: what is unused plus what evicting idle entries
  // (other than those in `keep`) would give back. The budget only: a load
  // that fits it may still find no slot or offset space (begin_load says).
  std::uint64_t room_in_budget(const std::vector<EntryId>& keep, std::int64_t now_ns) const;
  std::uint64_t offset_space_used() const { return allocator_.span_used(); }
  std::uint32_t slots_used() const { return slots_.used_count(); }
  std::uint64_t evictions() const { return evictions_; }  // for room, watermark and admin
  std::uint64_t bytes_evicted() const { return bytes_evicted_; }

  // ok, or kInternal naming the first broken invariant: allocator and slots
  // consistent, entries' extents and slots disjoint and accounted, one
  // current entry per name, no idle entry left that is no longer current.
  Status self_check() const;

 private:
  enum class Removal { kForRoom, kByAdmin, kDropped };
  struct NameHistory {
    std::uint64_t generation = 0;
    layout::SourceIdentity source;
  };

  EntryInfo* mutable_entry(EntryId id);
  void note_time(std::int64_t now_ns);
  std::uint64_t max_model_size() const;
  Status check_size(std::string_view name, std::uint64_t size, std::uint64_t footprint) const;
  Status check_replaceable(const EntryInfo* old, const layout::SourceIdentity& source) const;
  // Idle: holds its own bytes, READY, current, no refs, not pinned (nor
  // through an alias).
  static bool idle(const EntryInfo& e);
  // `old`, the current entry of its name, stops being current: freed now
  // (into `freed`) when `reclaim`, else kept while refs or a mapping hold it.
  void supersede(EntryInfo& old, bool reclaim, std::vector<EntryInfo>& freed);
  // The aliases of `base` stop being current; those without refs go.
  void retire_aliases(EntryId base);
  void take_alias(EntryId id);
  // Makes `a` (its name, source, generation and pin set) a new current
  // alias of `base` and adds it.
  void add_alias(EntryInfo& a, EntryId base);
  bool mapped(const EntryInfo& e) const { return mapped_ && mapped_(e); }
  // A superseded entry with no refs: freed now, or retained while mapped.
  std::vector<EntryInfo> drop_or_retain(EntryInfo& e);
  bool evictable_for_room(EntryId id, std::int64_t now_ns) const;
  // Victims (policy order) that make `footprint` fit the budget, leave a free
  // slot and room to place `extent`, counting `reclaimed` as already freed;
  // kPoolFull (saying which of the three is short) if impossible.
  Result<std::vector<EntryId>> plan_room(std::string_view name, std::uint64_t footprint,
                                         std::uint64_t extent, const EntryInfo* reclaimed,
                                         std::int64_t now_ns);
  Status pool_full(std::string_view name, std::uint64_t bytes, const std::string& why) const;
  EntryInfo make_entry(std::string_view name, const layout::SourceIdentity& source,
                       std::uint64_t size, std::uint64_t extent, std::int64_t now_ns) const;
  // Removes `id` from every index, frees its extent and slot, returns it.
  EntryInfo take(EntryId id, Removal how);
  std::vector<EntryInfo> evict_down_to(std::uint64_t target, std::int64_t now_ns);
  Status check_entries() const;

  PoolConfig config_;
  ExtentAllocator allocator_;
  CatalogSlots slots_;
  std::unique_ptr<EvictionPolicy> policy_;
  std::map<EntryId, EntryInfo> entries_;
  std::map<std::string, EntryId, std::less<>> current_;      // name -> current entry
  std::map<std::string, NameHistory, std::less<>> history_;  // name -> last generation
  EntryId next_id_ = 1;
  std::uint64_t bytes_used_ = 0;
  std::uint64_t evictions_ = 0;
  std::uint64_t bytes_evicted_ = 0;
  std::int64_t clock_ns_ = 0;  // latest now_ns seen
  MappedProbe mapped_;
  std::size_t retained_ = 0;
  std::size_t aliases_ = 0;  // entries with a base
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_POOL_POOL_HPP_
