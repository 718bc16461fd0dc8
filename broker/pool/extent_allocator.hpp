// File: broker/pool/extent_allocator.hpp
//
// The free-extent map over the segment's data offset space [begin, end).
// It lives in broker memory only: after a restart it is rebuilt by reserve()-
// ing the extent of every adopted catalog entry, so a crash can never leave
// allocator metadata half-written in the segment.
//
// Extents are multiples of `alignment` (the segment's page size, 2 MiB by
// default) at aligned offsets; a zero-byte request takes one unit so every
// extent has a distinct offset. Placement is best fit (smallest free extent
// that holds the request, lowest offset among equals), carved from the front
// of that extent; freeing coalesces with both neighbours. The offset space is
// meant to be much larger than the memory budget (tmpfs is sparse), which is
// what keeps fragmentation from ever refusing a request the budget allows.
//
// Not thread-safe: owned by the Pool, used from one thread.
#ifndef MODELPOOL_BROKER_POOL_EXTENT_ALLOCATOR_HPP_
#define MODELPOOL_BROKER_POOL_EXTENT_ALLOCATOR_HPP_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "shm/status.hpp"

namespace modelpool::broker {

class ExtentAllocator {
 public:
  // `begin` is rounded up and `end` down to `alignment` (which must be > 0);
  // the whole range starts free.
  ExtentAllocator(std::uint64_t begin, std::uint64_t end, std::uint64_t alignment);

  // The bytes an extent for a `size`-byte object takes: max(size, 1) rounded
  // up to the alignment. Saturates at UINT64_MAX (never fits) on overflow.
  std::uint64_t extent_size_for(std::uint64_t size) const;

  // Offset of a new extent of extent_size_for(size) bytes, or nullopt when no
  // free extent is large enough.
  std::optional<std::uint64_t> allocate(std::uint64_t size);

  // Returns [offset, offset + extent_size_for(size)) to the free map and
  // coalesces it with its neighbours. A range that is unaligned, out of range
  // or not wholly in use is refused (false) and changes nothing.
  bool free(std::uint64_t offset, std::uint64_t size);

  // Marks [offset, offset + extent_size_for(size)) used (adoption after a
  // restart). False, changing nothing, if it is unaligned, out of range or
  // overlaps an extent in use.
  bool reserve(std::uint64_t offset, std::uint64_t size);

  std::uint64_t begin() const { return begin_; }
  std::uint64_t end() const { return end_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t capacity() const { return end_ - begin_; }
  std::uint64_t free_bytes() const { return free_bytes_; }
  std::uint64_t used_bytes() const { return capacity() - free_bytes_; }
  std::uint64_t largest_free() const;
  std::size_t free_extent_count() const { return by_offset_.size(); }
  // End of the highest extent in use minus begin: how much of the offset
  // space has been touched (0 when nothing is in use).
  std::uint64_t span_used() const;

  // ok, or kInternal naming the first broken invariant: free extents sorted,
  // aligned, inside the range, non-overlapping and coalesced; the by-size
  // index agrees with them; the free byte count agrees with their sum.
  Status self_check() const;

 private:
  void insert_free(std::uint64_t offset, std::uint64_t size);
  void erase_free(std::map<std::uint64_t, std::uint64_t>::iterator it);
  // True if [offset, offset + size) overlaps any free extent.
  bool overlaps_free(std::uint64_t offset, std::uint64_t size) const;
  // True if [offset, offset + size) is aligned and inside [begin_, end_).
  bool valid_range(std::uint64_t offset, std::uint64_t size) const;

  std::uint64_t begin_;
  std::uint64_t end_;
  std::uint64_t alignment_;
  std::uint64_t free_bytes_ = 0;
  std::map<std::uint64_t, std::uint64_t> by_offset_;           // offset -> size
  std::set<std::pair<std::uint64_t, std::uint64_t>> by_size_;  // (size, offset)
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_POOL_EXTENT_ALLOCATOR_HPP_
