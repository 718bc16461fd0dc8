// File: tests/unit/extent_allocator_test.cc
//
// The free-extent map: alignment, best fit, coalescing, reserve/free
// validation, span accounting, and a randomized churn with long-lived holders
// showing that a sparse offset space never refuses what the budget allows.
#include "broker/pool/extent_allocator.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <vector>

namespace modelpool::broker {
namespace {

constexpr std::uint64_t kA = 2ULL << 20;
constexpr std::uint64_t kBegin = 4 * kA;

TEST(ExtentAllocator, RoundsRangeAndRequestsToAlignment) {
  ExtentAllocator a(kBegin - 5, kBegin + 10 * kA + 7, kA);
  EXPECT_EQ(a.begin(), kBegin);
  EXPECT_EQ(a.capacity(), 10 * kA);
  EXPECT_EQ(a.extent_size_for(0), kA);
  EXPECT_EQ(a.extent_size_for(1), kA);
  EXPECT_EQ(a.extent_size_for(kA), kA);
  EXPECT_EQ(a.extent_size_for(kA + 1), 2 * kA);
  EXPECT_EQ(a.extent_size_for(std::numeric_limits<std::uint64_t>::max()),
            std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(a.allocate(1), kBegin);
  EXPECT_EQ(a.allocate(0), kBegin + kA);  // zero bytes still get a distinct offset
  EXPECT_EQ(a.allocate(kA + 1), kBegin + 2 * kA);
  EXPECT_EQ(a.used_bytes(), 4 * kA);
  EXPECT_EQ(a.free_bytes(), 6 * kA);
  EXPECT_TRUE(a.self_check().ok());
}

TEST(ExtentAllocator, RefusesWhatDoesNotFit) {
  ExtentAllocator a(kBegin, kBegin + 4 * kA, kA);
  EXPECT_FALSE(a.allocate(5 * kA).has_value());
  EXPECT_FALSE(a.allocate(std::numeric_limits<std::uint64_t>::max()).has_value());
  ASSERT_TRUE(a.allocate(4 * kA).has_value());
  EXPECT_FALSE(a.allocate(1).has_value());
  EXPECT_EQ(a.largest_free(), 0u);
  EXPECT_TRUE(a.self_check().ok());
}

TEST(ExtentAllocator, FreeCoalescesBothNeighbours) {
  ExtentAllocator a(kBegin, kBegin + 8 * kA, kA);
  auto x = a.allocate(kA), y = a.allocate(kA), z = a.allocate(kA);
  ASSERT_TRUE(x && y && z);
  EXPECT_EQ(a.free_extent_count(), 1u);  // the tail
  ASSERT_TRUE(a.free(*x, kA));
  ASSERT_TRUE(a.free(*z, kA));  // merges with the tail
  EXPECT_EQ(a.free_extent_count(), 2u);
  EXPECT_EQ(a.largest_free(), 6 * kA);
  ASSERT_TRUE(a.free(*y, 1));  // size 1 means its whole unit
  EXPECT_EQ(a.free_extent_count(), 1u);
  EXPECT_EQ(a.largest_free(), 8 * kA);
  EXPECT_EQ(a.free_bytes(), a.capacity());
  EXPECT_TRUE(a.self_check().ok());
}

TEST(ExtentAllocator, BestFitTakesTheSmallestHoleThatFits) {
  ExtentAllocator a(kBegin, kBegin + 20 * kA, kA);
  std::vector<std::uint64_t> at;
  for (std::uint64_t units : {3, 1, 1, 1, 2, 1}) at.push_back(*a.allocate(units * kA));
  // Holes of 3, 1 and 2 units separated by held extents; the tail is 9 units.
  ASSERT_TRUE(a.free(at[0], 3 * kA));
  ASSERT_TRUE(a.free(at[2], kA));
  ASSERT_TRUE(a.free(at[4], 2 * kA));
  EXPECT_EQ(a.allocate(2 * kA), at[4]);
  EXPECT_EQ(a.allocate(kA), at[2]);
  EXPECT_EQ(a.allocate(kA), at[0]);  // carved from the front of the 3-unit hole
  EXPECT_EQ(a.allocate(2 * kA), at[0] + kA);
  EXPECT_TRUE(a.self_check().ok());
}

TEST(ExtentAllocator, ReserveRefusesOverlapAndBadRanges) {
  ExtentAllocator a(kBegin, kBegin + 10 * kA, kA);
  EXPECT_TRUE(a.reserve(kBegin + 4 * kA, 2 * kA));
  EXPECT_FALSE(a.reserve(kBegin + 5 * kA, kA));      // inside
  EXPECT_FALSE(a.reserve(kBegin + 3 * kA, 2 * kA));  // straddles the start
  EXPECT_FALSE(a.reserve(kBegin + kA + 1, kA));      // unaligned
  EXPECT_FALSE(a.reserve(kBegin - kA, kA));          // before begin
  EXPECT_FALSE(a.reserve(kBegin + 9 * kA, 2 * kA));  // past end
  EXPECT_EQ(a.used_bytes(), 2 * kA);
  EXPECT_TRUE(a.reserve(kBegin, kA));
  EXPECT_TRUE(a.reserve(kBegin + 9 * kA, kA));
  // Allocation works around reserved extents.
  EXPECT_EQ(a.allocate(3 * kA), kBegin + kA);
  EXPECT_EQ(a.allocate(3 * kA), kBegin + 6 * kA);
  EXPECT_FALSE(a.allocate(kA).has_value());
  EXPECT_TRUE(a.self_check().ok());
}

TEST(ExtentAllocator, FreeRefusesWhatIsNotInUse) {
  ExtentAllocator a(kBegin, kBegin + 10 * kA, kA);
  const std::uint64_t x = *a.allocate(2 * kA);
  const std::uint64_t before = a.free_bytes();
  EXPECT_FALSE(a.free(x + 2 * kA, kA));        // free already
  EXPECT_FALSE(a.free(x, 3 * kA));             // runs into free space
  EXPECT_FALSE(a.free(x + 1, kA));             // unaligned
  EXPECT_FALSE(a.free(kBegin + 10 * kA, kA));  // out of range
  EXPECT_EQ(a.free_bytes(), before);
  EXPECT_TRUE(a.free(x, 2 * kA));
  EXPECT_FALSE(a.free(x, 2 * kA));  // double free
  EXPECT_TRUE(a.self_check().ok());
}

TEST(ExtentAllocator, SpanUsedTracksTheHighestExtentInUse) {
  ExtentAllocator a(kBegin, kBegin + 10 * kA, kA);
  EXPECT_EQ(a.span_used(), 0u);
  const std::uint64_t x = *a.allocate(kA);
  const std::uint64_t y = *a.allocate(2 * kA);
  EXPECT_EQ(a.span_used(), 3 * kA);
  ASSERT_TRUE(a.free(x, kA));
  EXPECT_EQ(a.span_used(), 3 * kA);
  ASSERT_TRUE(a.free(y, 2 * kA));
  EXPECT_EQ(a.span_used(), 0u);
  ASSERT_TRUE(a.reserve(kBegin + 9 * kA, kA));
  EXPECT_EQ(a.span_used(), 10 * kA);
}

// Hundreds of mixed-size allocations and frees, with a fifth of the holders
// long-lived and scattered through the offset space. Whenever the budget has
// room the allocation must succeed, never overlap a held extent, and every
// invariant must hold after every step.
TEST(ExtentAllocator, RandomChurnNeverFailsWithinBudget) {
  constexpr std::uint64_t kBudget = 128 * kA;
  for (std::uint32_t seed : {1u, 2u, 3u, 4u}) {
    std::mt19937_64 rng(seed);
    ExtentAllocator a(kBegin, kBegin + 16 * kBudget, kA);
    std::map<std::uint64_t, std::uint64_t> held;  // offset -> extent bytes
    std::vector<std::uint64_t> short_lived, long_lived;
    std::uint64_t used = 0;
    for (int step = 0; step < 1500; ++step) {
      const std::uint64_t bytes = 1 + rng() % (24 * kA);
      const std::uint64_t extent = a.extent_size_for(bytes);
      const bool can_alloc = used + extent <= kBudget;
      if (can_alloc && (short_lived.empty() || rng() % 100 < 55)) {
        std::optional<std::uint64_t> at = a.allocate(bytes);
        ASSERT_TRUE(at.has_value()) << "seed " << seed << " step " << step << " used " << used;
        auto next = held.lower_bound(*at);
        ASSERT_TRUE(next == held.end() || next->first >= *at + extent);
        ASSERT_TRUE(next == held.begin() ||
                    std::prev(next)->first + std::prev(next)->second <= *at);
        held[*at] = extent;
        used += extent;
        (rng() % 5 == 0 ? long_lived : short_lived).push_back(*at);
      } else {
        auto& pool = (!long_lived.empty() && (short_lived.empty() || rng() % 20 == 0))
                         ? long_lived
                         : short_lived;
        if (pool.empty()) continue;
        const std::size_t i = rng() % pool.size();
        const std::uint64_t at = pool[i];
        pool[i] = pool.back();
        pool.pop_back();
        ASSERT_TRUE(a.free(at, held[at]));
        used -= held[at];
        held.erase(at);
      }
      ASSERT_EQ(a.used_bytes(), used);
      Status s = a.self_check();
      ASSERT_TRUE(s.ok()) << s.to_string() << " seed " << seed << " step " << step;
    }
    EXPECT_LE(a.span_used(), a.capacity());
  }
}

}  // namespace
}  // namespace modelpool::broker
