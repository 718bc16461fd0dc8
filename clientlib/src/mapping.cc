// File: clientlib/src/mapping.cc
#include "clientlib/src/mapping.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>

#include "clientlib/src/unix_socket.hpp"
#include "shm/layout/segment_layout.hpp"

namespace modelpool::detail {
namespace {

bool is_power_of_two(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

Status map_error(std::uint64_t offset, std::uint64_t size, int err) {
  return error(ErrorCode::kInternal, "cannot map " + std::to_string(size) +
                                         " bytes of the segment at offset " +
                                         std::to_string(offset) + ": " + errno_text(err));
}

// Maps `length` bytes at an address aligned to `align`: reserve
// length + align bytes of address space, map the file over the aligned part
// (MAP_FIXED), give the unused head and tail back.
void* map_aligned(int fd, std::uint64_t offset, std::size_t length, std::size_t align, int flags) {
  void* reserve = ::mmap(nullptr, length + align, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED) return MAP_FAILED;
  const auto start = reinterpret_cast<std::uintptr_t>(reserve);
  const auto aligned = static_cast<std::uintptr_t>(layout::align_up(start, align));
  void* p = ::mmap(reinterpret_cast<void*>(aligned), length, PROT_READ, flags | MAP_FIXED, fd,
                   static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    const int err = errno;
    ::munmap(reserve, length + align);
    errno = err;
    return MAP_FAILED;
  }
  if (aligned > start) ::munmap(reserve, aligned - start);
  const std::uintptr_t end = aligned + length;
  const std::uintptr_t reserve_end = start + length + align;
  if (reserve_end > end) ::munmap(reinterpret_cast<void*>(end), reserve_end - end);
  return p;
}

}  // namespace

Mapping::Mapping(Mapping&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      length_(std::exchange(other.length_, 0)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    reset();
    base_ = std::exchange(other.base_, nullptr);
    length_ = std::exchange(other.length_, 0);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void Mapping::reset() {
  if (base_ != nullptr) ::munmap(base_, length_);
  base_ = nullptr;
  length_ = 0;
  data_ = nullptr;
  size_ = 0;
}

Result<Mapping> Mapping::map(int fd, std::uint64_t offset, std::uint64_t size,
                             std::uint64_t page_size) {
  Mapping m;
  if (size == 0) return m;
  const auto sys_page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  if (offset % sys_page != 0) return map_error(offset, size, EINVAL);
  const bool huge = page_size > sys_page && is_power_of_two(page_size);
  const std::uint64_t granule = huge ? page_size : sys_page;
  if (size > SIZE_MAX - 2 * granule) return map_error(offset, size, ENOMEM);
  const auto length = static_cast<std::size_t>(layout::align_up(size, granule));
  // MAP_NORESERVE: on hugetlbfs a shared mapping would otherwise reserve huge pages
  // for all of it, holes included.
  const int flags = MAP_SHARED | MAP_NORESERVE;
  void* p = huge ? map_aligned(fd, offset, length, static_cast<std::size_t>(granule), flags)
                 : ::mmap(nullptr, length, PROT_READ, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return map_error(offset, size, errno);
  // Best effort: a core dump with the weights is only wasteful.
  (void)::madvise(p, length, MADV_DONTDUMP);
  m.base_ = p;
  m.length_ = length;
  m.data_ = static_cast<const std::byte*>(p);
  m.size_ = static_cast<std::size_t>(size);
  return m;
}

}  // namespace modelpool::detail
