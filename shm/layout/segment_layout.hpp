// File: shm/layout/segment_layout.hpp
//
// What lives in the shared-memory segment, byte for byte. The broker is the
// only writer; workers never read these structures (every fact a worker needs
// comes in the broker's reply), so the layout serves one purpose: a broker
// killed at any instant can restart and re-adopt every READY entry.
//
//   [0, 4 KiB)                 SegmentHeader
//   [catalog_offset, ...)      CatalogEntry[catalog_capacity]
//   [data_offset, size)        data extents, aligned to `alignment`
//
// Crash-safety contract: an entry's fields are written while its state is
// kFree or kLoading; `state` is stored last with release ordering. Adoption
// keeps kReady entries and discards everything else. No lock and no allocator
// metadata live in the segment: the free-extent map is rebuilt from the
// catalog.
#ifndef MODELPOOL_SHM_LAYOUT_SEGMENT_LAYOUT_HPP_
#define MODELPOOL_SHM_LAYOUT_SEGMENT_LAYOUT_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shm/status.hpp"

namespace modelpool::layout {

inline constexpr char kMagic[8] = {'M', 'P', 'O', 'O', 'L', 'S', 'E', 'G'};
inline constexpr std::uint32_t kLayoutVersion = 1;
inline constexpr std::uint64_t kDefaultAlignment = 2ULL << 20;  // 2 MiB
inline constexpr std::size_t kMaxNameBytes = 255;
inline constexpr std::size_t kHeaderBytes = 4096;

enum class EntryState : std::uint32_t { kFree = 0, kLoading = 1, kReady = 2 };

enum class Format : std::uint32_t { kRaw = 0, kSafetensors = 1, kGguf = 2 };
std::string_view to_string(Format f);

// Where the bytes came from; a change of any field means a new generation.
struct SourceIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const SourceIdentity&) const = default;
};

struct SegmentHeader {
  char magic[8];
  std::uint32_t layout_version;
  std::uint32_t header_bytes;  // sizeof(SegmentHeader), checked at adoption
  char pool_name[64];
  std::int64_t created_unix_ns;
  std::int64_t broker_pid;     // of the broker that last adopted it
  std::uint64_t segment_size;  // offset space, bytes
  std::uint64_t alignment;     // extent alignment (page size of the fs, >= 2 MiB)
  std::uint64_t catalog_offset;
  std::uint64_t catalog_capacity;  // entries
  std::uint64_t data_offset;
  std::uint64_t entry_bytes;  // sizeof(CatalogEntry), checked at adoption
};
static_assert(sizeof(SegmentHeader) <= kHeaderBytes);

struct CatalogEntry {
  std::atomic<std::uint32_t> state;  // EntryState, stored last (release)
  std::uint32_t format;              // Format
  std::uint64_t generation;
  std::uint64_t offset;       // into the segment
  std::uint64_t size;         // bytes of the model
  std::uint64_t extent_size;  // reserved bytes (size aligned up)
  std::uint64_t checksum;     // xxh3-64 of the bytes
  SourceIdentity source;
  std::int64_t loaded_unix_ns;
  std::uint64_t load_ns;
  std::uint32_t name_len;
  std::uint32_t pinned;  // sticky across restarts
  char name[kMaxNameBytes + 1];
  char reserved[512 - 4 - 4 - 8 * 5 - 32 - 8 - 8 - 4 - 4 - (kMaxNameBytes + 1)];
};
static_assert(sizeof(CatalogEntry) == 512);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// `v` rounded up / down to a multiple of `a` (a > 0; any a, not only powers of two).
inline constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) {
  return (v + a - 1) / a * a;
}
inline constexpr std::uint64_t align_down(std::uint64_t v, std::uint64_t a) { return v / a * a; }

// Geometry of a new segment for `capacity` catalog entries and `data_bytes`
// of offset space for extents.
struct Geometry {
  std::uint64_t segment_size;
  std::uint64_t catalog_offset;
  std::uint64_t catalog_capacity;
  std::uint64_t data_offset;
  std::uint64_t alignment;
};
Geometry compute_geometry(std::uint64_t capacity, std::uint64_t data_bytes,
                          std::uint64_t alignment);

// Fills a fresh header.
void init_header(SegmentHeader* h, std::string_view pool, const Geometry& g, std::int64_t pid);

// ok if `h` was written by a compatible broker for `pool` in a segment of
// `mapped_size` bytes; otherwise a message saying what is wrong.
Status validate_header(const SegmentHeader& h, std::string_view pool, std::uint64_t mapped_size);

inline CatalogEntry* catalog(void* base, const SegmentHeader& h) {
  return reinterpret_cast<CatalogEntry*>(static_cast<char*>(base) + h.catalog_offset);
}

inline std::string_view entry_name(const CatalogEntry& e) {
  return {e.name, e.name_len <= kMaxNameBytes ? e.name_len : 0};
}

}  // namespace modelpool::layout

#endif  // MODELPOOL_SHM_LAYOUT_SEGMENT_LAYOUT_HPP_
