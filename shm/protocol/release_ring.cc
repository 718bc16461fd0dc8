// File: shm/protocol/release_ring.cc
#include "shm/protocol/release_ring.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

namespace modelpool::proto {

namespace {

template <typename T>
std::atomic_ref<T> at(T& field) {
  return std::atomic_ref<T>(field);
}

Status sys_error(const char* what, int err) {
  return error(ErrorCode::kInternal,
               std::string("release ring: ") + what + ": " + std::strerror(err));
}

Result<ReleaseRingLayout*> map_page(int fd) {
  void* p = ::mmap(nullptr, kReleaseRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return sys_error("mmap", errno);
  return static_cast<ReleaseRingLayout*>(p);
}

}  // namespace

Result<ReleaseRing> ReleaseRing::create(int* fd_out) {
  const int fd = ::memfd_create("modelpool-release-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return sys_error("memfd_create", errno);
  auto fail = [fd](const char* what) {
    const int err = errno;
    ::close(fd);
    return sys_error(what, err);
  };
  if (::ftruncate(fd, kReleaseRingBytes) != 0) return fail("ftruncate");
  // Sealed before anyone else sees it: the worker can write the page but
  // never shrink it, so the broker's reads cannot fault.
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return fail("seal");
  }
  auto page = map_page(fd);
  if (!page.ok()) {
    ::close(fd);
    return page.status();
  }
  ReleaseRingLayout* l = new (*page) ReleaseRingLayout{};
  l->slots = kReleaseRingSlots;
  at(l->magic).store(kReleaseRingMagic, std::memory_order_release);
  *fd_out = fd;
  return ReleaseRing(l);
}

Result<ReleaseRing> ReleaseRing::attach(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return sys_error("fstat", errno);
  if (static_cast<std::size_t>(st.st_size) != kReleaseRingBytes) {
    return error(ErrorCode::kProtocol, "release ring: " + std::to_string(st.st_size) +
                                           " bytes, expected " + std::to_string(kReleaseRingBytes));
  }
  auto page = map_page(fd);
  if (!page.ok()) return page.status();
  ReleaseRing ring(*page);
  if (at((*page)->magic).load(std::memory_order_acquire) != kReleaseRingMagic ||
      (*page)->slots != kReleaseRingSlots) {
    return error(ErrorCode::kProtocol, "release ring: unknown layout");
  }
  ring.count_ = at((*page)->head).load(std::memory_order_relaxed);
  return ring;
}

ReleaseRing::ReleaseRing(ReleaseRing&& other) noexcept
    : page_(std::exchange(other.page_, nullptr)), count_(other.count_) {}

ReleaseRing& ReleaseRing::operator=(ReleaseRing&& other) noexcept {
  if (this != &other) {
    if (page_ != nullptr) ::munmap(page_, kReleaseRingBytes);
    page_ = std::exchange(other.page_, nullptr);
    count_ = other.count_;
  }
  return *this;
}

ReleaseRing::~ReleaseRing() {
  if (page_ != nullptr) ::munmap(page_, kReleaseRingBytes);
}

bool ReleaseRing::push(std::uint64_t handle) {
  const std::uint64_t taken = at(page_->tail).load(std::memory_order_acquire);
  if (count_ - taken >= kReleaseRingSlots) return false;
  at(page_->handles[count_ % kReleaseRingSlots]).store(handle, std::memory_order_relaxed);
  at(page_->head).store(++count_, std::memory_order_seq_cst);
  return true;
}

bool ReleaseRing::wake_requested() const {
  return at(page_->wake).load(std::memory_order_seq_cst) != 0;
}

Status ReleaseRing::drain(std::vector<std::uint64_t>& out) {
  const std::uint64_t head = at(page_->head).load(std::memory_order_seq_cst);
  if (head - count_ > kReleaseRingSlots) {  // behind what was taken, or too far ahead
    return error(ErrorCode::kProtocol, "release ring head " + std::to_string(head) +
                                           " is not within " + std::to_string(kReleaseRingSlots) +
                                           " of the " + std::to_string(count_) + " taken");
  }
  for (; count_ != head; ++count_) {
    out.push_back(at(page_->handles[count_ % kReleaseRingSlots]).load(std::memory_order_relaxed));
  }
  at(page_->tail).store(count_, std::memory_order_release);
  return {};
}

void ReleaseRing::set_wake(bool on) {
  at(page_->wake).store(on ? 1U : 0U, std::memory_order_seq_cst);
}

}  // namespace modelpool::proto
