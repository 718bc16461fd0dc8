// File: clientlib/src/mapping.hpp
//
// A read-only view of a range of the segment file (the client maps the
// whole segment with one; see SegmentFile): mmap PROT_READ, MAP_NORESERVE,
// MAP_SHARED, MADV_DONTDUMP (a worker's core dump does not carry weights).
// With huge pages the view starts at a virtual address aligned to the page
// size, so the kernel can back it with huge TLB entries. A Mapping owns its
// view and unmaps it on destruction; move-only, not thread-safe.
#ifndef MODELPOOL_CLIENTLIB_SRC_MAPPING_HPP_
#define MODELPOOL_CLIENTLIB_SRC_MAPPING_HPP_

#include <cstddef>
#include <cstdint>
#include <span>

#include "shm/status.hpp"

namespace modelpool::detail {

class Mapping {
 public:
  Mapping() = default;
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { reset(); }

  // Maps [offset, offset + size) of `fd`. `offset` must be a multiple of the
  // system page size; `page_size` is the segment filesystem's page size (a
  // huge page size selects the aligned placement). size 0 maps nothing.
  static Result<Mapping> map(int fd, std::uint64_t offset, std::uint64_t size,
                             std::uint64_t page_size);

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  // Unmaps; bytes() is empty afterwards.
  void reset();

 private:
  void* base_ = nullptr;  // what to munmap
  std::size_t length_ = 0;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_MAPPING_HPP_
