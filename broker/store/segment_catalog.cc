// File: broker/store/segment_catalog.cc
//
// The catalog half of Segment: publishing entry states under the layout's
// crash-safety contract (fields first, state last with release ordering),
// re-adopting the catalog a previous broker left behind, and the read-only
// views the self-check compares with the pool.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstring>

#include "broker/store/errno_text.hpp"
#include "broker/store/segment.hpp"

namespace modelpool::broker {
namespace {

using layout::CatalogEntry;
using layout::EntryState;

constexpr long kCachestat = 451;  // __NR_cachestat (Linux 6.5), missing from older headers

std::uint32_t raw(EntryState s) { return static_cast<std::uint32_t>(s); }

std::int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool Segment::mapped(std::uint64_t offset, std::uint64_t len) const {
  if (len == 0) return false;
  struct flock probe {};
  probe.l_type = F_WRLCK;  // conflicts with any reader's lock
  probe.l_whence = SEEK_SET;
  probe.l_start = static_cast<off_t>(offset);
  probe.l_len = static_cast<off_t>(len);
  probe.l_pid = 0;  // required by F_OFD_GETLK
  if (::fcntl(fd_, F_OFD_GETLK, &probe) != 0) return true;
  return probe.l_type != F_UNLCK;
}

CatalogEntry& Segment::entry(std::uint32_t slot) {
  assert(slot < header_->catalog_capacity);
  return layout::catalog(header_, *header_)[slot];
}

EntryRecord Segment::record_of(std::uint32_t slot, const CatalogEntry& e, EntryState state) {
  EntryRecord r;
  r.slot = slot;
  r.state = state;
  r.name = std::string(layout::entry_name(e));
  r.generation = e.generation;
  r.offset = e.offset;
  r.size = e.size;
  r.extent_size = e.extent_size;
  r.checksum = e.checksum;
  r.format = static_cast<layout::Format>(e.format);
  r.source = e.source;
  r.pinned = std::atomic_ref<const std::uint32_t>(e.pinned).load(std::memory_order_acquire) != 0;
  r.loaded_ns = e.loaded_unix_ns;
  r.load_seconds = static_cast<double>(e.load_ns) / 1e9;
  return r;
}

void Segment::publish_loading(const EntryRecord& meta) {
  if (meta.slot >= header_->catalog_capacity) return;
  CatalogEntry& e = entry(meta.slot);
  if (e.state.load(std::memory_order_relaxed) != raw(EntryState::kFree)) {
    e.state.store(raw(EntryState::kFree), std::memory_order_relaxed);
    // The FREE must precede every field change. Only the compiler can
    // reorder here: a killed process stops at an instruction boundary and
    // the stores it retired still reach memory (and a kernel crash takes
    // tmpfs with it), so a compiler barrier is the whole contract.
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  e.format = static_cast<std::uint32_t>(layout::Format::kRaw);
  e.generation = meta.generation;
  e.offset = meta.offset;
  e.size = meta.size;
  e.extent_size = meta.extent_size;
  e.checksum = 0;
  e.source = meta.source;
  e.loaded_unix_ns = 0;
  e.load_ns = 0;
  const std::size_t n = std::min(meta.name.size(), layout::kMaxNameBytes);
  std::memcpy(e.name, meta.name.data(), n);
  e.name[n] = '\0';
  e.name_len = static_cast<std::uint32_t>(n);
  e.pinned = meta.pinned ? 1 : 0;
  e.state.store(raw(EntryState::kLoading), std::memory_order_release);
}

void Segment::publish_ready(std::uint32_t slot, std::uint64_t checksum, layout::Format format,
                            std::uint64_t load_ns) {
  if (slot >= header_->catalog_capacity) return;
  CatalogEntry& e = entry(slot);
  e.checksum = checksum;
  e.format = static_cast<std::uint32_t>(format);
  e.load_ns = load_ns;
  e.loaded_unix_ns = unix_now_ns();
  e.state.store(raw(EntryState::kReady), std::memory_order_release);
}

void Segment::publish_pinned(std::uint32_t slot, bool pinned) {
  if (slot >= header_->catalog_capacity) return;
  // One aligned 32-bit store: a crash sees the old or the new value.
  std::atomic_ref<std::uint32_t>(entry(slot).pinned)
      .store(pinned ? 1 : 0, std::memory_order_release);
}

void Segment::publish_free(std::uint32_t slot) {
  if (slot >= header_->catalog_capacity) return;
  entry(slot).state.store(raw(EntryState::kFree), std::memory_order_release);
}

EntryRecord Segment::slot_view(std::uint32_t slot) const {
  if (slot >= header_->catalog_capacity) {
    EntryRecord none;
    none.state = EntryState::kFree;
    return none;
  }
  const CatalogEntry& e = layout::catalog(header_, *header_)[slot];
  return record_of(slot, e, static_cast<EntryState>(e.state.load(std::memory_order_acquire)));
}

Result<std::uint64_t> Segment::data_bytes_held() const {
  struct statfs fs {};
  if (::fstatfs(fd_, &fs) != 0 || fs.f_type != TMPFS_MAGIC) {
    return error(ErrorCode::kNotFound, "not tmpfs: the memory held is unknown");
  }
  // cachestat(2) counts every page of the range in the page cache, reserved
  // or written (mincore and SEEK_DATA miss pages that fallocate reserved and
  // nothing wrote), and on tmpfs swapped-out pages as evicted.
  struct {
    std::uint64_t off, len;
  } range{data_offset(), size() - data_offset()};
  struct {
    std::uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } stat{};
  if (::syscall(kCachestat, fd_, &range, &stat, 0) != 0) {
    if (errno == ENOSYS) {
      return error(ErrorCode::kNotFound, "no cachestat: the memory held is unknown");
    }
    return error(ErrorCode::kInternal, "cachestat " + path_ + ": " + errno_text(errno));
  }
  return (stat.nr_cache + stat.nr_evicted) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::vector<EntryRecord> Segment::adopt_entries() {
  report_ = {};
  std::vector<EntryRecord> kept;
  const std::uint64_t lo = data_offset(), hi = size();
  for (std::uint32_t slot = 0; slot < catalog_capacity(); ++slot) {
    CatalogEntry& e = entry(slot);
    const std::uint32_t state = e.state.load(std::memory_order_acquire);
    if (state == raw(EntryState::kFree)) continue;
    if (state == raw(EntryState::kLoading)) {
      ++report_.loading;
      publish_free(slot);
      continue;
    }
    const bool sane = state == raw(EntryState::kReady) && e.name_len >= 1 &&
                      e.name_len <= layout::kMaxNameBytes && e.offset >= lo && e.offset <= hi &&
                      e.extent_size <= hi - e.offset && e.size <= e.extent_size &&
                      e.format <= static_cast<std::uint32_t>(layout::Format::kGguf);
    if (!sane) {
      ++report_.invalid;
      publish_free(slot);
      continue;
    }
    kept.push_back(record_of(slot, e, EntryState::kReady));
  }
  std::sort(kept.begin(), kept.end(),
            [](const EntryRecord& a, const EntryRecord& b) { return a.offset < b.offset; });
  punch_gaps(kept);
  report_.ready = kept.size();
  return kept;
}

// Drops entries overlapping an earlier one (only a bug could make them) and
// punches every byte of the data region outside the remaining entries' pages
// (an entry holds its size rounded up to the page size; the rest of its
// extent is offset space only, and a broker that reserved whole extents left
// memory there).
void Segment::punch_gaps(std::vector<EntryRecord>& kept) {
  std::uint64_t extent_end = data_offset();  // end of the kept extents so far
  std::uint64_t cursor = data_offset();      // end of the kept pages so far
  std::vector<EntryRecord> disjoint;
  disjoint.reserve(kept.size());
  for (EntryRecord& a : kept) {
    if (a.extent_size != 0 && a.offset < extent_end) {
      ++report_.invalid;
      publish_free(a.slot);
      continue;
    }
    if (a.offset > cursor) {
      release(cursor, a.offset - cursor);
      report_.punched_bytes += a.offset - cursor;
    }
    const std::uint64_t pages = layout::align_up(a.size, page_size_);
    cursor = std::max(cursor, a.offset + std::min(pages, a.extent_size));
    extent_end = std::max(extent_end, a.offset + a.extent_size);
    disjoint.push_back(std::move(a));
  }
  if (size() > cursor) {
    release(cursor, size() - cursor);
    report_.punched_bytes += size() - cursor;
  }
  kept = std::move(disjoint);
}

}  // namespace modelpool::broker
