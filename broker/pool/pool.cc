// File: broker/pool/pool.cc
//
// The load path of the pool: lookups, begin/finish/fail of a load, refcounts
// and the one place entries are removed (take). begin_load() plans first —
// victims, extent, slot — and mutates only once the plan is known to work, so
// a refusal leaves the pool exactly as it was. Admin operations, adoption and
// the self-check are in pool_admin.cc.
#include "broker/pool/pool.hpp"

#include <cassert>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>

#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {

using layout::EntryState;
using units::format_bytes;

Pool::Pool(PoolConfig config)
    : config_(std::move(config)),
      allocator_(config_.data_begin, config_.data_end, config_.alignment),
      slots_(config_.catalog_capacity),
      policy_(make_eviction_policy(config_.eviction)) {
  if (policy_ == nullptr) {
    policy_ = make_eviction_policy(kDefaultEvictionPolicy);
    config_.eviction = std::string(kDefaultEvictionPolicy);
  }
}

Status Pool::validate_config(const PoolConfig& c) {
  auto bad = [](const std::string& what) { return error(ErrorCode::kBadRequest, what); };
  if (c.budget == 0) return bad("the memory budget is zero");
  if (!(c.low_watermark > 0 && c.low_watermark <= c.high_watermark && c.high_watermark <= 1)) {
    return bad("watermarks must satisfy 0 < low <= high <= 1");
  }
  if (make_eviction_policy(c.eviction) == nullptr) {
    return bad("unknown eviction policy '" + c.eviction + "'");
  }
  if (c.alignment == 0) return bad("extent alignment is zero");
  if (c.page_size == 0) return bad("page size is zero");
  if (c.alignment % c.page_size != 0) {
    return bad("extent alignment " + std::to_string(c.alignment) +
               " is not a multiple of the page size " + std::to_string(c.page_size));
  }
  if (c.catalog_capacity == 0) return bad("catalog capacity is zero");
  if (ExtentAllocator(c.data_begin, c.data_end, c.alignment).capacity() == 0) {
    return bad("the data offset space holds no aligned extent");
  }
  return Status::ok_status();
}

const EntryInfo* Pool::find_current(std::string_view name) const {
  auto it = current_.find(name);
  return it == current_.end() ? nullptr : get(it->second);
}

const EntryInfo* Pool::find_resident(const layout::SourceIdentity& source) const {
  for (const auto& [id, e] : entries_) {
    if (e.base == 0 && e.current && e.source == source) return &e;
  }
  return nullptr;
}

const EntryInfo* Pool::get(EntryId id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

EntryInfo* Pool::mutable_entry(EntryId id) {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

void Pool::note_time(std::int64_t now_ns) {
  if (now_ns > clock_ns_) clock_ns_ = now_ns;
}

std::uint64_t Pool::max_model_size() const {
  return config_.max_model_size == 0 ? config_.budget : config_.max_model_size;
}

std::uint64_t Pool::footprint_for(std::uint64_t size) const {
  const std::uint64_t page = config_.page_size;
  return size / page * page + (size % page != 0 ? page : 0);  // no overflow near 2^64
}

Status Pool::check_size(std::string_view name, std::uint64_t size, std::uint64_t footprint) const {
  const std::string who = "model '" + std::string(name) + "' is " + format_bytes(size);
  if (size > max_model_size()) {
    return error(ErrorCode::kTooLarge,
                 who + ", over the maximum model size of " + format_bytes(max_model_size()));
  }
  if (footprint > config_.budget) {
    return error(ErrorCode::kTooLarge, who + " (" + format_bytes(footprint) +
                                           " in pages), over the memory budget of " +
                                           format_bytes(config_.budget));
  }
  return Status::ok_status();
}

Status Pool::check_replaceable(const EntryInfo* old, const layout::SourceIdentity& source) const {
  if (old == nullptr) return Status::ok_status();
  const std::string who = "'" + old->name + "' generation " + std::to_string(old->generation);
  if (old->state == EntryState::kLoading) {
    return error(ErrorCode::kInternal, who + " is already loading; wait for it");
  }
  if (old->source == source) {
    return error(ErrorCode::kInternal, who + " is already resident with the same source");
  }
  return Status::ok_status();
}

bool Pool::idle(const EntryInfo& e) {
  return e.base == 0 && e.state == EntryState::kReady && e.current && e.refs == 0 && !e.holds_pin();
}

bool Pool::evictable_for_room(EntryId id, std::int64_t now_ns) const {
  const EntryInfo* e = get(id);
  return e != nullptr && idle(*e) && now_ns >= e->evictable_after_ns && !mapped(*e);
}

Status Pool::pool_full(std::string_view name, std::uint64_t bytes, const std::string& why) const {
  return error(ErrorCode::kPoolFull,
               "no room for '" + std::string(name) + "' (" + format_bytes(bytes) + "): " + why);
}

// Victims until the footprint fits the budget, a slot is free and the offset
// space can place the extent (small models hold a page each but take a whole
// extent of offset space, so many of them can fill it before the budget).
Result<std::vector<EntryId>> Pool::plan_room(std::string_view name, std::uint64_t footprint,
                                             std::uint64_t extent, const EntryInfo* reclaimed,
                                             std::int64_t now_ns) {
  std::uint64_t used = bytes_used_ - (reclaimed != nullptr ? reclaimed->footprint : 0);
  bool slot_free = slots_.free_count() > 0 || reclaimed != nullptr;
  const EntryId skip = reclaimed != nullptr ? reclaimed->id : 0;
  std::unordered_set<EntryId> chosen;
  auto evictable = [&](EntryId id) {
    return id != skip && chosen.count(id) == 0 && evictable_for_room(id, now_ns);
  };
  std::vector<EntryId> victims;
  // Placeable as things are, or once the planned victims' extents are free:
  // when the offset space is tight, a copy of the allocator frees them as
  // they are chosen (one copy per load, however many victims it takes).
  std::optional<ExtentAllocator> trial;
  auto placeable = [&] {
    if (!trial) {
      if (allocator_.largest_free() >= extent) return true;
      trial.emplace(allocator_);
      if (reclaimed != nullptr) trial->free(reclaimed->offset, reclaimed->extent_size);
      for (EntryId v : victims) trial->free(get(v)->offset, get(v)->extent_size);
    }
    return trial->largest_free() >= extent;
  };
  while (used + footprint > config_.budget || !slot_free || !placeable()) {
    std::optional<EntryId> victim = policy_->pick_victim(evictable);
    if (!victim) {
      if (!slot_free) {
        return pool_full(name, footprint,
                         "all " + std::to_string(slots_.capacity()) +
                             " catalog slots are taken by entries in use");
      }
      if (used + footprint <= config_.budget) {
        return pool_full(name, footprint,
                         "no free range of " + format_bytes(extent) + " in the segment's " +
                             format_bytes(allocator_.capacity()) +
                             " of offset space, and the entries holding it cannot be evicted "
                             "now (each model takes a multiple of " +
                             format_bytes(config_.alignment) +
                             " of it; --offset-space-factor sets its size)");
      }
      return pool_full(name, footprint,
                       format_bytes(used) + " of the " + format_bytes(config_.budget) +
                           " budget is held by entries that cannot be evicted now "
                           "(referenced, pinned, loading or in their grace period)");
    }
    chosen.insert(*victim);
    victims.push_back(*victim);
    used -= get(*victim)->footprint;
    if (trial) trial->free(get(*victim)->offset, get(*victim)->extent_size);
    slot_free = true;
  }
  return victims;
}

EntryInfo Pool::make_entry(std::string_view name, const layout::SourceIdentity& source,
                           std::uint64_t size, std::uint64_t extent, std::int64_t now_ns) const {
  EntryInfo e;
  e.name = std::string(name);
  e.source = source;
  e.size = size;
  e.extent_size = extent;
  e.footprint = footprint_for(size);
  e.state = EntryState::kLoading;
  e.loaded_ns = now_ns;
  e.last_access_ns = now_ns;
  auto h = history_.find(name);
  if (h == history_.end()) {
    e.generation = 1;
  } else {
    e.generation = h->second.source == source ? h->second.generation : h->second.generation + 1;
  }
  return e;
}

Result<Reservation> Pool::begin_load(std::string_view name, const layout::SourceIdentity& source,
                                     std::uint64_t size, std::int64_t now_ns) {
  note_time(now_ns);
  if (name.empty() || name.size() > layout::kMaxNameBytes) {
    return error(ErrorCode::kInvalidName,
                 "model name must be 1 to " + std::to_string(layout::kMaxNameBytes) + " bytes");
  }
  const std::uint64_t extent = allocator_.extent_size_for(size);
  const std::uint64_t footprint = footprint_for(size);
  if (Status s = check_size(name, size, footprint); !s.ok()) return s;
  const EntryInfo* old = find_current(name);
  if (Status s = check_replaceable(old, source); !s.ok()) return s;
  // An alias holds no bytes: superseding it frees no room.
  const EntryInfo* reclaimed =
      old != nullptr && old->base == 0 && old->refs == 0 && !mapped(*old) ? old : nullptr;
  Result<std::vector<EntryId>> victims = plan_room(name, footprint, extent, reclaimed, now_ns);
  if (!victims.ok()) return victims.status();
  // Placed while the victims still hold their extents, so it overlaps none,
  // unless only their room can take it (then after they are taken, below).
  std::optional<std::uint64_t> offset = allocator_.allocate(extent);

  Reservation r;
  r.entry = make_entry(name, source, size, extent, now_ns);
  r.entry.id = next_id_++;
  std::optional<std::uint32_t> slot = slots_.allocate();  // prefer a slot nobody just left
  if (old != nullptr) {
    r.entry.pinned = old->pinned;
    supersede(*mutable_entry(old->id), reclaimed != nullptr, r.evicted);
  }
  for (EntryId v : *victims) r.evicted.push_back(take(v, Removal::kForRoom));
  if (!offset) offset = allocator_.allocate(extent);
  assert(offset.has_value());  // plan_room made room
  r.entry.offset = *offset;
  if (!slot) slot = slots_.allocate();
  assert(slot.has_value());  // plan_room left one free
  r.entry.slot = *slot;
  history_[r.entry.name] = NameHistory{r.entry.generation, source};
  current_[r.entry.name] = r.entry.id;
  bytes_used_ += footprint;
  entries_.emplace(r.entry.id, r.entry);
  return r;
}

void Pool::supersede(EntryInfo& old, bool reclaim, std::vector<EntryInfo>& freed) {
  if (old.base != 0) {
    if (old.refs == 0) {
      take_alias(old.id);
    } else {
      if (old.pinned) --mutable_entry(old.base)->alias_pins;
      old.current = false;
      current_.erase(old.name);
    }
    return;
  }
  if (reclaim) {
    freed.push_back(take(old.id, Removal::kDropped));
    return;
  }
  retire_aliases(old.id);  // the names that shared it find the new copy
  old.current = false;
  current_.erase(old.name);
  if (old.refs == 0) {  // mapped by a worker the broker cannot see
    old.retained = true;
    ++retained_;
  }
}

Result<Reservation> Pool::alias(std::string_view name, EntryId base, std::int64_t now_ns) {
  note_time(now_ns);
  if (name.empty() || name.size() > layout::kMaxNameBytes) {
    return error(ErrorCode::kInvalidName,
                 "model name must be 1 to " + std::to_string(layout::kMaxNameBytes) + " bytes");
  }
  const EntryInfo* b = get(base);
  if (b == nullptr || b->base != 0 || !b->current || b->state != EntryState::kReady ||
      b->name == name) {
    return error(ErrorCode::kInternal, "no resident copy to share for '" + std::string(name) + "'");
  }
  const EntryInfo* old = find_current(name);
  if (old != nullptr && (old->state == EntryState::kLoading || old->source == b->source)) {
    return error(ErrorCode::kInternal, "'" + std::string(name) + "' is already " +
                                           (old->source == b->source ? "resident" : "loading"));
  }
  Reservation r;
  EntryInfo& a = r.entry;
  a = make_entry(name, b->source, b->size, b->extent_size, now_ns);
  if (old != nullptr) {
    a.pinned = old->pinned;
    const bool reclaim = old->base == 0 && old->refs == 0 && !mapped(*old);
    supersede(*mutable_entry(old->id), reclaim, r.evicted);
  }
  history_[a.name] = NameHistory{a.generation, a.source};
  add_alias(a, base);
  return r;
}

void Pool::add_alias(EntryInfo& a, EntryId base) {
  EntryInfo* b = mutable_entry(base);
  a.id = next_id_++;
  a.base = base;
  a.footprint = 0;
  a.state = EntryState::kReady;
  a.offset = b->offset;
  a.extent_size = b->extent_size;
  a.slot = b->slot;
  a.checksum = b->checksum;
  a.format = b->format;
  a.load_seconds = 0;
  if (a.pinned) ++b->alias_pins;
  current_[a.name] = a.id;
  entries_.emplace(a.id, a);
  ++aliases_;
}

Result<Reservation> Pool::fold(EntryId id, EntryId base, std::int64_t now_ns) {
  note_time(now_ns);
  const EntryInfo* e = get(id);
  const EntryInfo* b = get(base);
  if (e == nullptr || e->base != 0 || !e->current || e->state != EntryState::kLoading ||
      e->refs != 0 || b == nullptr || b->base != 0 || !b->current ||
      b->state != EntryState::kReady || b->id == id || b->size != e->size) {
    return error(ErrorCode::kInternal,
                 "no loading copy to fold into entry " + std::to_string(base));
  }
  Reservation r;
  r.entry = *e;  // its name, source, generation, pin and times
  r.evicted.push_back(take(id, Removal::kDropped));
  add_alias(r.entry, base);
  return r;
}

void Pool::retire_aliases(EntryId base) {
  if (aliases_ == 0) return;
  std::vector<EntryId> of_base;
  for (const auto& [id, e] : entries_) {
    if (e.base == base && e.current) of_base.push_back(id);
  }
  std::vector<EntryInfo> none;
  for (EntryId id : of_base) supersede(*mutable_entry(id), false, none);
}

void Pool::take_alias(EntryId id) {
  auto it = entries_.find(id);
  assert(it != entries_.end() && it->second.base != 0);
  const EntryInfo& a = it->second;
  if (a.current) {
    if (a.pinned) {
      if (EntryInfo* b = mutable_entry(a.base)) --b->alias_pins;
    }
    current_.erase(a.name);
  }
  entries_.erase(it);
  --aliases_;
}

void Pool::finish_load(EntryId id, std::uint64_t checksum, layout::Format format,
                       double load_seconds) {
  EntryInfo* e = mutable_entry(id);
  if (e == nullptr || e->state != EntryState::kLoading) return;
  e->state = EntryState::kReady;
  e->checksum = checksum;
  e->format = format;
  e->load_seconds = load_seconds;
  policy_->on_insert(id, e->footprint, load_seconds);
}

EntryInfo Pool::fail_load(EntryId id) {
  const EntryInfo* e = get(id);
  if (e == nullptr || e->state != EntryState::kLoading) return {};
  return take(id, Removal::kDropped);
}

void Pool::add_ref(EntryId id, std::int64_t now_ns) {
  note_time(now_ns);
  EntryInfo* e = mutable_entry(id);
  if (e == nullptr) return;
  ++e->refs;
  ++e->accesses;
  e->last_access_ns = now_ns;
  if (e->base != 0) {  // the bytes are base's: its refs protect them
    e = mutable_entry(e->base);
    ++e->refs;
    ++e->alias_refs;
    e->last_access_ns = now_ns;
  }
  policy_->on_access(e->id);
}

std::vector<EntryInfo> Pool::release_ref(EntryId id) {
  EntryInfo* e = mutable_entry(id);
  if (e == nullptr || e->refs == 0) return {};
  --e->refs;
  if (e->base != 0) {
    const EntryId base = e->base;
    if (e->refs == 0 && !e->current) take_alias(e->id);
    e = mutable_entry(base);
    if (e == nullptr || e->refs == 0 || e->alias_refs == 0) return {};
    --e->refs;
    --e->alias_refs;
  }
  if (e->refs > 0 || e->current) return {};
  return drop_or_retain(*e);
}

std::vector<EntryInfo> Pool::drop_or_retain(EntryInfo& e) {
  if (!mapped(e)) return {take(e.id, Removal::kDropped)};
  if (!e.retained) {
    e.retained = true;
    ++retained_;
  }
  return {};
}

std::vector<EntryInfo> Pool::reap() {
  std::vector<EntryInfo> out;
  if (retained_ == 0) return out;
  std::vector<EntryId> unmapped;
  for (const auto& [id, e] : entries_) {
    if (e.retained && !mapped(e)) unmapped.push_back(id);
  }
  out.reserve(unmapped.size());
  for (EntryId id : unmapped) out.push_back(take(id, Removal::kDropped));
  return out;
}

EntryInfo Pool::take(EntryId id, Removal how) {
  auto it = entries_.find(id);
  assert(it != entries_.end());
  assert(it->second.base == 0);
  if (aliases_ > 0) retire_aliases(id);  // all without refs, as it has none
  EntryInfo e = std::move(it->second);
  entries_.erase(it);
  if (e.state == EntryState::kReady) {
    if (how == Removal::kForRoom) {
      policy_->on_evict(id);
    } else {
      policy_->on_remove(id);
    }
  }
  const bool freed = allocator_.free(e.offset, e.extent_size);
  assert(freed);
  (void)freed;
  slots_.free(e.slot);
  if (e.retained) --retained_;
  if (e.current) {
    auto c = current_.find(e.name);
    if (c != current_.end() && c->second == id) current_.erase(c);
  }
  bytes_used_ -= e.footprint;
  if (how != Removal::kDropped) {
    ++evictions_;
    bytes_evicted_ += e.footprint;
  }
  return e;
}

}  // namespace modelpool::broker
