// File: tests/protocol/release_ring_test.cc
//
// The release ring on its own: the broker's side creates it in a sealed
// memfd, the worker's side attaches through the same descriptor; handles
// come out in order across many laps; a full ring refuses; a head that runs
// ahead or falls behind is a protocol error; the sizes a worker cannot
// change; and one producer thread against one consumer thread loses nothing
// (the TSan build checks the ordering).
#include "shm/protocol/release_ring.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace modelpool::proto {
namespace {

struct Pair {
  Pair() {
    int fd = -1;
    auto b = ReleaseRing::create(&fd);
    EXPECT_TRUE(b.ok()) << b.status().message();
    auto w = ReleaseRing::attach(fd);
    EXPECT_TRUE(w.ok()) << w.status().message();
    memfd = fd;
    broker.emplace(std::move(b).value());
    worker.emplace(std::move(w).value());
  }
  ~Pair() { ::close(memfd); }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  int memfd = -1;
  std::optional<ReleaseRing> broker, worker;
};

TEST(ReleaseRing, HandlesComeOutInOrderLapAfterLap) {
  Pair p;
  std::vector<std::uint64_t> got;
  std::uint64_t next = 1;
  for (int round = 0; round < 10; ++round) {  // 10 x 100 pushes: almost four laps
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(p.worker->push(next++));
    ASSERT_TRUE(p.broker->drain(got).ok());
  }
  ASSERT_EQ(got.size(), 1000U);
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i + 1);
  got.clear();
  ASSERT_TRUE(p.broker->drain(got).ok());
  EXPECT_TRUE(got.empty());
}

TEST(ReleaseRing, AFullRingRefusesUntilTheBrokerDrains) {
  Pair p;
  for (std::uint32_t i = 0; i < kReleaseRingSlots; ++i) ASSERT_TRUE(p.worker->push(i));
  EXPECT_FALSE(p.worker->push(9999));
  std::vector<std::uint64_t> got;
  ASSERT_TRUE(p.broker->drain(got).ok());
  EXPECT_EQ(got.size(), kReleaseRingSlots);
  EXPECT_TRUE(p.worker->push(9999));
}

TEST(ReleaseRing, WakeIsSeenByTheWorker) {
  Pair p;
  EXPECT_FALSE(p.worker->wake_requested());
  p.broker->set_wake(true);
  EXPECT_TRUE(p.worker->wake_requested());
  p.broker->set_wake(false);
  EXPECT_FALSE(p.worker->wake_requested());
}

TEST(ReleaseRing, AHeadOutOfRangeIsAProtocolErrorAndTakesNothing) {
  Pair p;
  auto* page = static_cast<ReleaseRingLayout*>(
      ::mmap(nullptr, kReleaseRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, p.memfd, 0));
  ASSERT_NE(page, MAP_FAILED);
  std::vector<std::uint64_t> got;
  std::atomic_ref<std::uint64_t>(page->head).store(kReleaseRingSlots + 1);
  Status s = p.broker->drain(got);
  EXPECT_EQ(s.code(), ErrorCode::kProtocol);
  EXPECT_TRUE(got.empty());
  // Behind what was taken: the broker's own count says so, not the page's tail.
  std::atomic_ref<std::uint64_t>(page->head).store(3);
  ASSERT_TRUE(p.broker->drain(got).ok());
  page->tail = 0;  // a worker scribbling over the tail changes nothing
  std::atomic_ref<std::uint64_t>(page->head).store(2);
  EXPECT_EQ(p.broker->drain(got).code(), ErrorCode::kProtocol);
  EXPECT_EQ(got.size(), 3U);
  ::munmap(page, kReleaseRingBytes);
}

TEST(ReleaseRing, TheWorkerCannotShrinkTheMemfd) {
  Pair p;
  EXPECT_NE(::ftruncate(p.memfd, 0), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(::fcntl(p.memfd, F_ADD_SEALS, F_SEAL_WRITE), 0);  // the seals are sealed
}

TEST(ReleaseRing, AttachRefusesWhatIsNotARing) {
  const int fd = ::memfd_create("not-a-ring", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ReleaseRing::attach(fd).status().code(), ErrorCode::kProtocol);  // empty
  ASSERT_EQ(::ftruncate(fd, kReleaseRingBytes), 0);
  EXPECT_EQ(ReleaseRing::attach(fd).status().code(), ErrorCode::kProtocol);  // no magic
  ::close(fd);
}

TEST(ReleaseRing, OneProducerThreadAndOneConsumerThreadLoseNothing) {
  Pair p;
  constexpr std::uint64_t kCount = 200000;
  std::atomic<bool> done{false};
  std::thread producer([&] {
    for (std::uint64_t h = 1; h <= kCount;) {
      if (p.worker->push(h)) ++h;
    }
    done = true;
  });
  std::vector<std::uint64_t> got;
  got.reserve(kCount);
  bool ok = true;
  while (ok && (!done.load() || got.size() < kCount)) ok = p.broker->drain(got).ok();
  producer.join();
  ASSERT_TRUE(ok);
  ASSERT_EQ(got.size(), kCount);
  for (std::uint64_t i = 0; i < kCount; ++i) ASSERT_EQ(got[i], i + 1);
}

}  // namespace
}  // namespace modelpool::proto
