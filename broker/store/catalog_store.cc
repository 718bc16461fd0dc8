// File: broker/store/catalog_store.cc
#include "broker/store/catalog_store.hpp"

#include <algorithm>
#include <utility>

namespace modelpool::broker {

CatalogStore::CatalogStore(std::unique_ptr<Segment> segment, const PoolConfig& config)
    : segment_(std::move(segment)), pool_(config) {
  // Workers lock the extents they map (Segment::mapped): nothing they still
  // map is freed, across restarts of the broker too.
  pool_.set_mapped_probe(
      [seg = segment_.get()](const EntryInfo& e) { return seg->mapped(e.offset, e.size); });
}

void CatalogStore::free_bytes(std::uint32_t slot, std::uint64_t offset, std::uint64_t extent) {
  segment_->publish_free(slot);
  segment_->release(offset, extent);
}

void CatalogStore::free_one(const EntryInfo& e) {
  if (e.base != 0) return;  // an alias: its bytes are another entry's
  free_bytes(e.slot, e.offset, e.extent_size);
}

std::vector<EntryInfo> CatalogStore::free(std::vector<EntryInfo> entries) {
  for (const EntryInfo& e : entries) free_one(e);
  return entries;
}

Result<Reservation> CatalogStore::begin_load(std::string_view name,
                                             const layout::SourceIdentity& source,
                                             std::uint64_t size, std::int64_t now_ns) {
  auto res = pool_.begin_load(name, source, size, now_ns);
  if (!res.ok()) return res;
  res->evicted = free(std::move(res->evicted));
  const EntryInfo& e = res->entry;
  // A new generation inherits its predecessor's pin: the catalog says so too.
  segment_->publish_loading(e);
  return res;
}

Result<Reservation> CatalogStore::alias(std::string_view name, EntryId base, std::int64_t now_ns) {
  auto res = pool_.alias(name, base, now_ns);
  if (!res.ok()) return res;
  res->evicted = free(std::move(res->evicted));
  return res;
}

Result<Reservation> CatalogStore::fold(EntryId id, EntryId base, std::int64_t now_ns) {
  auto res = pool_.fold(id, base, now_ns);
  if (!res.ok()) return res;
  res->evicted = free(std::move(res->evicted));
  return res;
}

const EntryInfo* CatalogStore::finish_load(EntryId id, std::uint64_t checksum,
                                           layout::Format format, double load_seconds) {
  const EntryInfo* e = pool_.get(id);
  if (e == nullptr || e->state != layout::EntryState::kLoading) return e;
  segment_->publish_ready(e->slot, checksum, format,
                          static_cast<std::uint64_t>(load_seconds * 1e9));
  pool_.finish_load(id, checksum, format, load_seconds);
  return pool_.get(id);
}

EntryInfo CatalogStore::fail_load(EntryId id) {
  EntryInfo gone = pool_.fail_load(id);
  if (gone.id != 0) free_one(gone);
  return gone;
}

Status CatalogStore::set_pinned(std::string_view name, bool pinned) {
  if (Status s = pool_.set_pinned(name, pinned); !s.ok()) return s;
  const EntryInfo* now = pool_.find_current(name);
  const EntryInfo* bytes = now->base != 0 ? pool_.get(now->base) : now;
  segment_->publish_pinned(bytes->slot, bytes->holds_pin());
  return {};
}

std::vector<EntryInfo> CatalogStore::release_ref(EntryId id) { return free(pool_.release_ref(id)); }

Result<EntryInfo> CatalogStore::evict(std::string_view name) {
  auto gone = pool_.evict(name);
  if (gone.ok()) free_one(*gone);
  return gone;
}

std::vector<EntryInfo> CatalogStore::clear() { return free(pool_.clear()); }

std::vector<EntryInfo> CatalogStore::enforce_watermark() { return free(pool_.enforce_watermark()); }

std::vector<EntryInfo> CatalogStore::reap() { return free(pool_.reap()); }

CatalogStore::Adoption CatalogStore::adopt(std::int64_t evictable_after_ns) {
  Adoption out;
  if (!segment_->adopted()) return out;
  auto adopted = segment_->adopt_entries();
  // The newest generation of a name becomes current; older ones are superseded.
  std::sort(adopted.begin(), adopted.end(),
            [](const auto& a, const auto& b) { return a.generation > b.generation; });
  for (const EntryRecord& a : adopted) {
    EntryInfo e;
    static_cast<EntryRecord&>(e) = a;
    if (Status s = pool_.adopt(e); !s.ok()) {
      out.refused.push_back({a.name, a.generation, s.message()});
      if (s.code() != ErrorCode::kInternal) {  // superseded or invalid: its bytes are ours to free
        free_bytes(a.slot, a.offset, a.extent_size);
      }
      continue;
    }
    if (const EntryInfo* cur = pool_.find_current(a.name)) {
      pool_.set_evictable_after(cur->id, evictable_after_ns);
    }
    ++out.kept;
    out.bytes += pool_.footprint_for(a.size);
  }
  return out;
}

}  // namespace modelpool::broker
