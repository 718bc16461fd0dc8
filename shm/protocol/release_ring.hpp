// File: shm/protocol/release_ring.hpp
//
// The release ring: one page of shared memory per worker connection through
// which the worker hands its releases to the broker without a system call
// and without waking the broker. A `release` frame costs the worker a send
// and, on an idle broker, a wake-up (12-14 us in all when broker and worker
// sit on two vCPUs of a VM); a push here is two stores.
//
// The broker creates the ring (a sealed memfd: it cannot be shrunk under the
// broker, so reading it never faults) and passes it with its `hello` reply
// (SCM_RIGHTS); docs/protocol.md gives the layout. Single producer (the
// worker, serialized by its own lock), single consumer (the broker's event
// loop). The broker reads the ring before each request of that connection,
// before any admin request, before a load that may evict, and when the
// connection ends; while it needs releases at once (acquires wait for room)
// it raises `wake`, and a worker that sees `wake` after a push sends a
// `flush` frame.
//
// The broker trusts nothing in the ring: it keeps its own count of what it
// took, a head that runs more than `slots` ahead is a protocol error, and
// every handle is checked against the connection's own handles as a
// `release` frame's is.
#ifndef MODELPOOL_SHM_PROTOCOL_RELEASE_RING_HPP_
#define MODELPOOL_SHM_PROTOCOL_RELEASE_RING_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "shm/status.hpp"

namespace modelpool::proto {

inline constexpr std::uint64_t kReleaseRingMagic = 0x31676e6972526c4dULL;  // "MlRring1"
inline constexpr std::uint32_t kReleaseRingSlots = 256;
inline constexpr std::size_t kReleaseRingBytes = 4096;

// The page's layout. Plain integers, accessed through std::atomic_ref only.
struct ReleaseRingLayout {
  std::uint64_t magic;
  std::uint32_t slots;
  std::uint32_t reserved;
  alignas(64) std::uint64_t head;  // releases pushed; written by the worker
  alignas(64) std::uint64_t tail;  // releases taken; written by the broker
  alignas(64) std::uint32_t wake;  // 1: the broker asks for a flush frame after each push
  alignas(64) std::uint64_t handles[kReleaseRingSlots];
};
static_assert(sizeof(ReleaseRingLayout) <= kReleaseRingBytes);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);

// A mapping of one ring; unmaps on destruction. Not thread-safe: each side
// serializes its own calls.
class ReleaseRing {
 public:
  // Broker side: a new ring in a sealed memfd. `*fd_out` is the memfd (the
  // caller passes it on and closes it).
  static Result<ReleaseRing> create(int* fd_out);
  // Worker side: maps the ring behind `fd` (which the caller still owns) and
  // checks its size and header.
  static Result<ReleaseRing> attach(int fd);

  ReleaseRing(ReleaseRing&& other) noexcept;
  ReleaseRing& operator=(ReleaseRing&& other) noexcept;
  ReleaseRing(const ReleaseRing&) = delete;
  ReleaseRing& operator=(const ReleaseRing&) = delete;
  ~ReleaseRing();

  // Worker: queues `handle`; false when the ring is full (send a frame).
  bool push(std::uint64_t handle);
  // Worker, after a push: whether the broker asks for a flush frame. The
  // push and this load are both sequentially consistent, as are the
  // broker's store of `wake` and its read of `head`, so a push the broker's
  // drain missed is always followed by a flush.
  bool wake_requested() const;

  // Broker: appends every handle pushed since the last drain to `out`;
  // protocol_error when the head is not within `slots` of what was taken.
  Status drain(std::vector<std::uint64_t>& out);
  void set_wake(bool on);

 private:
  explicit ReleaseRing(ReleaseRingLayout* page) : page_(page) {}
  ReleaseRingLayout* page_ = nullptr;
  std::uint64_t count_ = 0;  // pushed (worker) or taken (broker): never read back from the page
};

}  // namespace modelpool::proto

#endif  // MODELPOOL_SHM_PROTOCOL_RELEASE_RING_HPP_
