// File: broker/pool/extent_allocator.cc
//
// Best-fit free-extent map: two indexes over the same free extents, one by
// offset (for coalescing and overlap checks) and one by (size, offset) (for
// best fit). Every mutation goes through insert_free/erase_free so the two
// indexes and the free byte count never disagree.
#include "broker/pool/extent_allocator.hpp"

#include <iterator>
#include <limits>
#include <string>

namespace modelpool::broker {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// `v` rounded up to a multiple of `a`, or kMax if that overflows.
std::uint64_t round_up(std::uint64_t v, std::uint64_t a) {
  const std::uint64_t rem = v % a;
  if (rem == 0) return v;
  if (v > kMax - (a - rem)) return kMax;
  return v + (a - rem);
}

Status broken(const std::string& what) {
  return error(ErrorCode::kInternal, "extent allocator: " + what);
}

}  // namespace

ExtentAllocator::ExtentAllocator(std::uint64_t begin, std::uint64_t end, std::uint64_t alignment)
    : alignment_(alignment == 0 ? 1 : alignment) {
  begin_ = round_up(begin, alignment_);
  end_ = begin_;
  if (begin_ != kMax && end > begin_) end_ = begin_ + (end - begin_) / alignment_ * alignment_;
  if (end_ > begin_) insert_free(begin_, end_ - begin_);
}

std::uint64_t ExtentAllocator::extent_size_for(std::uint64_t size) const {
  return round_up(size == 0 ? 1 : size, alignment_);
}

std::optional<std::uint64_t> ExtentAllocator::allocate(std::uint64_t size) {
  const std::uint64_t need = extent_size_for(size);
  if (need > capacity()) return std::nullopt;
  auto best = by_size_.lower_bound({need, 0});
  if (best == by_size_.end()) return std::nullopt;
  const std::uint64_t offset = best->second;
  const std::uint64_t have = best->first;
  erase_free(by_offset_.find(offset));
  if (have > need) insert_free(offset + need, have - need);
  return offset;
}

bool ExtentAllocator::free(std::uint64_t offset, std::uint64_t size) {
  std::uint64_t len = extent_size_for(size);
  if (!valid_range(offset, len) || overlaps_free(offset, len)) return false;
  std::uint64_t start = offset;
  auto next = by_offset_.lower_bound(offset);
  if (next != by_offset_.end() && next->first == offset + len) {
    len += next->second;
    next = std::next(next);
    erase_free(std::prev(next));
  }
  if (next != by_offset_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      len += prev->second;
      erase_free(prev);
    }
  }
  insert_free(start, len);
  return true;
}

bool ExtentAllocator::reserve(std::uint64_t offset, std::uint64_t size) {
  const std::uint64_t len = extent_size_for(size);
  if (!valid_range(offset, len)) return false;
  // Free extents are coalesced, so a range that is wholly free lies inside
  // the single free extent starting at or before it.
  auto it = by_offset_.upper_bound(offset);
  if (it == by_offset_.begin()) return false;
  --it;
  const std::uint64_t f_begin = it->first;
  const std::uint64_t f_end = it->first + it->second;
  if (offset + len > f_end) return false;
  erase_free(it);
  if (offset > f_begin) insert_free(f_begin, offset - f_begin);
  if (f_end > offset + len) insert_free(offset + len, f_end - offset - len);
  return true;
}

std::uint64_t ExtentAllocator::largest_free() const {
  return by_size_.empty() ? 0 : by_size_.rbegin()->first;
}

std::uint64_t ExtentAllocator::span_used() const {
  if (free_bytes_ == capacity()) return 0;
  if (by_offset_.empty()) return capacity();
  const auto& last = *by_offset_.rbegin();
  if (last.first + last.second == end_) return last.first - begin_;
  return capacity();
}

Status ExtentAllocator::self_check() const {
  if (by_offset_.size() != by_size_.size()) return broken("index sizes differ");
  std::uint64_t sum = 0;
  std::uint64_t prev_end = 0;
  bool first = true;
  for (const auto& [offset, size] : by_offset_) {
    const std::string at = "free extent at " + std::to_string(offset);
    if (size == 0) return broken(at + " is empty");
    if (offset % alignment_ != 0 || size % alignment_ != 0) return broken(at + " is unaligned");
    if (offset < begin_ || offset > end_ || size > end_ - offset) {
      return broken(at + " is out of range");
    }
    if (!first && offset < prev_end) return broken(at + " overlaps its predecessor");
    if (!first && offset == prev_end) return broken(at + " is not coalesced");
    if (by_size_.count({size, offset}) == 0) return broken(at + " missing from size index");
    sum += size;
    prev_end = offset + size;
    first = false;
  }
  if (sum != free_bytes_) {
    return broken("free bytes " + std::to_string(free_bytes_) + " but extents sum to " +
                  std::to_string(sum));
  }
  return Status::ok_status();
}

void ExtentAllocator::insert_free(std::uint64_t offset, std::uint64_t size) {
  by_offset_.emplace(offset, size);
  by_size_.emplace(size, offset);
  free_bytes_ += size;
}

void ExtentAllocator::erase_free(std::map<std::uint64_t, std::uint64_t>::iterator it) {
  by_size_.erase({it->second, it->first});
  free_bytes_ -= it->second;
  by_offset_.erase(it);
}

bool ExtentAllocator::overlaps_free(std::uint64_t offset, std::uint64_t size) const {
  auto it = by_offset_.lower_bound(offset + size);
  if (it == by_offset_.begin()) return false;
  --it;
  return it->first + it->second > offset;
}

bool ExtentAllocator::valid_range(std::uint64_t offset, std::uint64_t size) const {
  if (size == kMax || offset % alignment_ != 0) return false;
  if (offset < begin_ || offset >= end_) return false;
  return size <= end_ - offset;
}

}  // namespace modelpool::broker
