// File: broker/pool/pool_admin.cc
//
// The pool's admin side: explicit evict/clear/pin, watermark enforcement,
// re-adoption after a restart, listing, and the self-check that tests (and a
// debug admin command) use to prove the indexes agree with each other.
#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "broker/pool/pool.hpp"

namespace modelpool::broker {

using layout::EntryState;

namespace {

std::string quoted(std::string_view name) { return "'" + std::string(name) + "'"; }

Status broken(const std::string& what) { return error(ErrorCode::kInternal, "pool: " + what); }

}  // namespace

Result<EntryInfo> Pool::evict(std::string_view name) {
  const EntryInfo* e = find_current(name);
  if (e == nullptr) return error(ErrorCode::kNotFound, quoted(name) + " is not in the pool");
  if (e->state == EntryState::kLoading) {
    return error(ErrorCode::kForbidden, quoted(name) + " is loading");
  }
  if (e->refs > 0) {
    return error(ErrorCode::kForbidden,
                 quoted(name) + " is in use by " + std::to_string(e->refs) + " handles");
  }
  if (e->pinned) return error(ErrorCode::kForbidden, quoted(name) + " is pinned");
  if (e->base != 0) {  // the name goes; the bytes stay with the entry that holds them
    EntryInfo gone = *e;
    take_alias(gone.id);
    return gone;
  }
  if (e->alias_pins > 0) {
    return error(ErrorCode::kForbidden,
                 quoted(name) + " is pinned through another name that shares its bytes");
  }
  if (mapped(*e)) {
    return error(ErrorCode::kForbidden,
                 quoted(name) +
                     " is still mapped by a worker that holds it from before a "
                     "broker restart (a byte-range lock on its extent)");
  }
  return take(e->id, Removal::kByAdmin);
}

std::uint64_t Pool::room_in_budget(const std::vector<EntryId>& keep, std::int64_t now_ns) const {
  std::uint64_t room = config_.budget > bytes_used_ ? config_.budget - bytes_used_ : 0;
  for (const auto& [id, e] : entries_) {
    if (evictable_for_room(id, now_ns) && std::find(keep.begin(), keep.end(), id) == keep.end()) {
      room += e.footprint;
    }
  }
  return room;
}

std::vector<EntryInfo> Pool::clear() {
  std::vector<EntryId> idle_ids, idle_aliases;
  for (const auto& [id, e] : entries_) {
    if (idle(e) && !mapped(e)) idle_ids.push_back(id);
    if (e.base != 0 && e.current && e.refs == 0 && !e.pinned) idle_aliases.push_back(id);
  }
  for (EntryId id : idle_aliases) take_alias(id);  // names only: no bytes to return
  std::vector<EntryInfo> out;
  out.reserve(idle_ids.size());
  for (EntryId id : idle_ids) out.push_back(take(id, Removal::kByAdmin));
  return out;
}

Status Pool::set_pinned(std::string_view name, bool pinned) {
  auto it = current_.find(name);
  if (it == current_.end()) {
    return error(ErrorCode::kNotFound, quoted(name) + " is not in the pool");
  }
  EntryInfo* e = mutable_entry(it->second);
  if (e->base != 0 && e->pinned != pinned) {
    EntryInfo* b = mutable_entry(e->base);
    b->alias_pins = pinned ? b->alias_pins + 1 : b->alias_pins - 1;
  }
  e->pinned = pinned;
  return Status::ok_status();
}

std::uint64_t Pool::high_watermark_bytes() const {
  return static_cast<std::uint64_t>(static_cast<double>(config_.budget) * config_.high_watermark);
}

std::uint64_t Pool::low_watermark_bytes() const {
  return static_cast<std::uint64_t>(static_cast<double>(config_.budget) * config_.low_watermark);
}

std::vector<EntryInfo> Pool::enforce_watermark() { return enforce_watermark(clock_ns_); }

std::vector<EntryInfo> Pool::enforce_watermark(std::int64_t now_ns) {
  note_time(now_ns);
  if (bytes_used_ <= high_watermark_bytes()) return {};
  return evict_down_to(low_watermark_bytes(), now_ns);
}

std::vector<EntryInfo> Pool::evict_down_to(std::uint64_t target, std::int64_t now_ns) {
  std::vector<EntryInfo> out;
  auto evictable = [&](EntryId id) { return evictable_for_room(id, now_ns); };
  while (bytes_used_ > target) {
    std::optional<EntryId> victim = policy_->pick_victim(evictable);
    if (!victim) break;
    out.push_back(take(*victim, Removal::kForRoom));
  }
  return out;
}

bool Pool::set_evictable_after(EntryId id, std::int64_t not_before_ns) {
  EntryInfo* e = mutable_entry(id);
  if (e == nullptr) return false;
  e->evictable_after_ns = not_before_ns;
  return true;
}

Status Pool::adopt(const EntryInfo& ready_entry) {
  const EntryInfo& in = ready_entry;
  if (in.state != EntryState::kReady) {
    return error(ErrorCode::kBadRequest, quoted(in.name) + " is not READY");
  }
  if (in.name.empty() || in.name.size() > layout::kMaxNameBytes) {
    return error(ErrorCode::kInvalidName,
                 "bad model name of " + std::to_string(in.name.size()) + " bytes");
  }
  const EntryInfo* cur = find_current(in.name);
  const bool retain = cur != nullptr && mapped(in);
  if (cur != nullptr && !retain) {
    return error(ErrorCode::kForbidden, quoted(in.name) + " generation " +
                                            std::to_string(cur->generation) +
                                            " is already in the pool");
  }
  const std::string who = quoted(in.name) + " generation " + std::to_string(in.generation);
  if (in.extent_size < in.size || allocator_.extent_size_for(in.extent_size) != in.extent_size) {
    return broken(who + " has a bad extent size " + std::to_string(in.extent_size));
  }
  if (!slots_.reserve(in.slot)) {
    return broken(who + ": catalog slot " + std::to_string(in.slot) + " is out of range or taken");
  }
  if (!allocator_.reserve(in.offset, in.extent_size)) {
    slots_.free(in.slot);
    return broken(who + ": extent at " + std::to_string(in.offset) +
                  " is unaligned, out of range or overlaps another");
  }
  EntryInfo e = in;
  e.id = next_id_++;
  e.refs = 0;
  e.current = !retain;
  e.retained = retain;
  e.footprint = footprint_for(e.size);
  NameHistory& h = history_[e.name];
  if (e.generation >= h.generation) h = NameHistory{e.generation, e.source};
  if (retain) {
    ++retained_;
  } else {
    current_[e.name] = e.id;
  }
  bytes_used_ += e.footprint;
  policy_->on_insert(e.id, e.footprint, e.load_seconds);
  entries_.emplace(e.id, std::move(e));
  return Status::ok_status();
}

std::vector<const EntryInfo*> Pool::entries() const {
  std::vector<const EntryInfo*> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(&e);
  std::sort(out.begin(), out.end(), [](const EntryInfo* a, const EntryInfo* b) {
    return std::tie(a->name, a->generation, a->id) < std::tie(b->name, b->generation, b->id);
  });
  return out;
}

Status Pool::check_entries() const {
  std::vector<const EntryInfo*> by_offset;
  std::unordered_set<std::uint32_t> slots;
  std::uint64_t held = 0, extents = 0;
  std::map<EntryId, std::pair<std::uint32_t, std::uint32_t>> of_base;  // alias refs, pins
  for (const auto& [id, e] : entries_) {
    if (e.base != 0) {
      const EntryInfo* b = get(e.base);
      if (b == nullptr || b->base != 0 || b->state != EntryState::kReady ||
          (e.current && !b->current) || b->offset != e.offset || b->slot != e.slot) {
        return broken(quoted(e.name) + " shares bytes it does not match");
      }
      if (e.footprint != 0 || (!e.current && e.refs == 0)) {
        return broken(quoted(e.name) + " is an alias that should hold nothing");
      }
      of_base[e.base].first += e.refs;
      of_base[e.base].second += e.current && e.pinned ? 1 : 0;
      continue;
    }
    by_offset.push_back(&e);
    if (!slots.insert(e.slot).second) return broken(quoted(e.name) + " shares its slot");
    if (e.footprint != footprint_for(e.size))
      return broken(quoted(e.name) + " has a bad footprint");
    held += e.footprint;
    extents += e.extent_size;
    if (e.id != id)
      return broken("entry keyed " + std::to_string(id) + " has id " + std::to_string(e.id));
    if (!slots_.in_use(e.slot)) return broken(quoted(e.name) + " slot not marked used");
  }
  if (held != bytes_used_ || allocator_.used_bytes() != extents) {
    return broken("bytes used " + std::to_string(bytes_used_) + ", entries hold " +
                  std::to_string(held) + "; extents " + std::to_string(extents) +
                  ", allocator has " + std::to_string(allocator_.used_bytes()) + " in use");
  }
  if (slots_.used_count() != entries_.size() - aliases_) return broken("slot count disagrees");
  for (const auto& [id, e] : entries_) {
    const auto counted =
        of_base.count(id) != 0 ? of_base[id] : std::pair<std::uint32_t, std::uint32_t>{};
    if (e.base == 0 && (e.refs < e.alias_refs || e.alias_refs != counted.first ||
                        e.alias_pins != counted.second)) {
      return broken(quoted(e.name) + " disagrees with its aliases' refs or pins");
    }
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const EntryInfo* a, const EntryInfo* b) { return a->offset < b->offset; });
  for (std::size_t i = 0; i < by_offset.size(); ++i) {
    const EntryInfo& e = *by_offset[i];
    if (allocator_.extent_size_for(e.extent_size) != e.extent_size || e.extent_size < e.size) {
      return broken(quoted(e.name) + " has a bad extent size");
    }
    if (i > 0 && by_offset[i - 1]->offset + by_offset[i - 1]->extent_size > e.offset) {
      return broken(quoted(e.name) + " overlaps " + quoted(by_offset[i - 1]->name));
    }
  }
  return Status::ok_status();
}

Status Pool::self_check() const {
  if (Status s = allocator_.self_check(); !s.ok()) return s;
  if (Status s = check_entries(); !s.ok()) return s;
  std::size_t current = 0;
  for (const auto& [id, e] : entries_) {
    if (e.current) {
      ++current;
      auto it = current_.find(e.name);
      if (it == current_.end() || it->second != id) {
        return broken(quoted(e.name) + " is current but not indexed");
      }
    } else if (e.base == 0 && ((e.refs == 0 && !e.retained) || e.state != EntryState::kReady)) {
      return broken(quoted(e.name) + " is superseded and should have been freed");
    }
  }
  if (current != current_.size()) return broken("name index has stale names");
  return Status::ok_status();
}

}  // namespace modelpool::broker
