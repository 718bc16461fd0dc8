// File: tests/unit/pool_test.cc
//
// The pool's load path: hits, generations, size limits, eviction for room,
// pool_full with nothing changed, failed loads, catalog slot exhaustion.
#include "broker/pool/pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "pool_test_util.hpp"

namespace modelpool::broker {
namespace {

using layout::EntryState;
using testing::config_of;
using testing::expect_consistent;
using testing::kDataBegin;
using testing::kUnit;
using testing::load;
using testing::src;

TEST(Pool, BeginLoadReservesAlignedExtentAndSlot) {
  Pool pool(config_of(10));
  Result<Reservation> r = pool.begin_load("m/a", src(1), 3 * kUnit - 5, 100);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const EntryInfo& e = r->entry;
  EXPECT_NE(e.id, 0u);
  EXPECT_EQ(e.state, EntryState::kLoading);
  EXPECT_EQ(e.generation, 1u);
  EXPECT_EQ(e.size, 3 * kUnit - 5);
  EXPECT_EQ(e.extent_size, 3 * kUnit);
  EXPECT_EQ(e.offset, kDataBegin);
  EXPECT_EQ(e.slot, 0u);
  EXPECT_TRUE(e.current);
  EXPECT_TRUE(r->evicted.empty());
  EXPECT_EQ(pool.bytes_used(), 3 * kUnit);
  EXPECT_EQ(pool.slots_used(), 1u);
  ASSERT_NE(pool.find_current("m/a"), nullptr);
  EXPECT_EQ(pool.find_current("m/a")->state, EntryState::kLoading);
  expect_consistent(pool);
}

TEST(Pool, HitPathCountsAccessesAndKeepsEntry) {
  Pool pool(config_of(10));
  const EntryId id = load(pool, "a", 2);
  const EntryInfo* e = pool.find_current("a");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, EntryState::kReady);
  EXPECT_EQ(e->checksum, 42u);
  pool.add_ref(id, 1000);
  pool.add_ref(id, 2000);
  EXPECT_EQ(e->refs, 2u);
  EXPECT_EQ(e->accesses, 2u);
  EXPECT_EQ(e->last_access_ns, 2000);
  EXPECT_TRUE(pool.release_ref(id).empty());
  EXPECT_TRUE(pool.release_ref(id).empty());
  EXPECT_TRUE(pool.release_ref(id).empty());  // never underflows
  EXPECT_EQ(e->refs, 0u);
  EXPECT_EQ(pool.find_current("a"), e);
  pool.add_ref(12345, 0);  // unknown ids are ignored
  EXPECT_TRUE(pool.release_ref(12345).empty());
  expect_consistent(pool);
}

TEST(Pool, OldGenerationLivesUntilItsLastHolderReleases) {
  Pool pool(config_of(10));
  const EntryId old_id = load(pool, "a", 2, 0, /*inode=*/1);
  pool.add_ref(old_id, 0);
  Result<Reservation> r = pool.begin_load("a", src(2), 2 * kUnit, 10);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->entry.generation, 2u);
  EXPECT_TRUE(r->evicted.empty());  // the old one is still held
  ASSERT_NE(pool.get(old_id), nullptr);
  EXPECT_FALSE(pool.get(old_id)->current);
  EXPECT_EQ(pool.find_current("a")->id, r->entry.id);
  EXPECT_EQ(pool.entries().size(), 2u);
  expect_consistent(pool);
  std::vector<EntryInfo> freed = pool.release_ref(old_id);
  ASSERT_EQ(freed.size(), 1u);
  EXPECT_EQ(freed[0].id, old_id);
  EXPECT_EQ(freed[0].generation, 1u);
  EXPECT_EQ(pool.get(old_id), nullptr);
  EXPECT_EQ(pool.bytes_used(), 2 * kUnit);
  EXPECT_EQ(pool.evictions(), 0u);  // replacement is not eviction
  expect_consistent(pool);
}

TEST(Pool, IdleOldGenerationIsFreedAtOnceAndPinCarriesOver) {
  Pool pool(config_of(4));
  const EntryId old_id = load(pool, "a", 3, 0, 1);
  ASSERT_TRUE(pool.set_pinned("a", true).ok());
  // 3 + 3 units exceed the budget of 4 unless the old generation goes.
  Result<Reservation> r = pool.begin_load("a", src(2), 3 * kUnit, 10);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].id, old_id);
  EXPECT_TRUE(r->entry.pinned);
  EXPECT_EQ(r->entry.generation, 2u);
  EXPECT_EQ(pool.get(old_id), nullptr);
  expect_consistent(pool);
}

TEST(Pool, GenerationFollowsSourceAcrossEvictions) {
  Pool pool(config_of(10));
  load(pool, "a", 1, 0, 1);
  ASSERT_TRUE(pool.evict("a").ok());
  EXPECT_EQ(pool.get(load(pool, "a", 1, 0, 1))->generation, 1u);  // same file
  ASSERT_TRUE(pool.evict("a").ok());
  EXPECT_EQ(pool.get(load(pool, "a", 1, 0, 2))->generation, 2u);  // changed while out
}

TEST(Pool, BeginLoadRefusesDuplicateLoads) {
  Pool pool(config_of(10));
  Result<Reservation> r = pool.begin_load("a", src(1), kUnit, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(pool.begin_load("a", src(2), kUnit, 0).status().code(), ErrorCode::kInternal);
  pool.finish_load(r->entry.id, 1, layout::Format::kGguf, 0.5);
  EXPECT_EQ(pool.get(r->entry.id)->format, layout::Format::kGguf);
  EXPECT_EQ(pool.begin_load("a", src(1), kUnit, 0).status().code(), ErrorCode::kInternal);
  EXPECT_EQ(pool.begin_load("", src(1), kUnit, 0).status().code(), ErrorCode::kInvalidName);
  EXPECT_EQ(pool.begin_load(std::string(300, 'x'), src(1), kUnit, 0).status().code(),
            ErrorCode::kInvalidName);
  EXPECT_EQ(pool.entries().size(), 1u);
}

TEST(Pool, TooLargeNamesBothSizes) {
  PoolConfig c = config_of(10);
  c.max_model_size = 4 * kUnit;
  Pool pool(c);
  Result<Reservation> r = pool.begin_load("big", src(1), 5 * kUnit, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kTooLarge);
  EXPECT_NE(r.status().message().find("10.0 MiB"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("8.0 MiB"), std::string::npos) << r.status().message();

  // On 2 MiB pages a model holds whole 2 MiB pages.
  PoolConfig c2 = config_of(10);
  c2.budget += kUnit / 2;  // a budget that is not a whole number of pages
  c2.page_size = kUnit;
  Pool pool2(c2);
  r = pool2.begin_load("big", src(1), 11 * kUnit, 0);
  EXPECT_EQ(r.status().code(), ErrorCode::kTooLarge);
  r = pool2.begin_load("big", src(1), c2.budget, 0);  // fits, but its pages do not
  EXPECT_EQ(r.status().code(), ErrorCode::kTooLarge);
  EXPECT_NE(r.status().message().find("22.0 MiB in pages"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(pool2.entry_count(), 0u);

  // On 4 KiB pages the same model fits: it holds its size in 4 KiB pages.
  PoolConfig c3 = config_of(10);
  c3.budget += kUnit / 2;
  Pool pool3(c3);
  r = pool3.begin_load("big", src(1), c3.budget, 0);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->entry.footprint, c3.budget);
  EXPECT_EQ(r->entry.extent_size, 11 * kUnit);
  EXPECT_EQ(pool3.bytes_used(), c3.budget);
  r = pool3.begin_load("one-more-page", src(2), 1, 0);
  EXPECT_EQ(r.status().code(), ErrorCode::kPoolFull);  // the big one is loading: not evictable
}

// The budget counts the pages a model holds, not its 2 MiB-aligned extent:
// a 4 KiB page pool fits 512 one-page models where 1 extent-sized model fits.
TEST(Pool, SmallModelsCountTheirPagesNotTheirExtents) {
  PoolConfig c = config_of(1, 1024);  // a budget of 2 MiB, 1024 slots
  c.data_end = c.data_begin + 1024 * kUnit;
  Pool pool(c);
  for (int i = 0; i < 512; ++i) {
    Result<Reservation> r =
        pool.begin_load("small/" + std::to_string(i), src(10 + i), i % 2 == 0 ? 4096 : 1, 0);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().message();
    EXPECT_TRUE(r->evicted.empty());
    EXPECT_EQ(r->entry.footprint, 4096u);
    EXPECT_EQ(r->entry.extent_size, kUnit);  // offset space still goes by extents
    EXPECT_EQ(r->entry.offset % kUnit, 0u);
    pool.finish_load(r->entry.id, 0, layout::Format::kRaw, 0.001);
  }
  EXPECT_EQ(pool.bytes_used(), c.budget);
  EXPECT_EQ(pool.offset_space_used(), 512 * kUnit);
  ASSERT_TRUE(pool.self_check().ok()) << pool.self_check().message();

  // The 513th evicts exactly one idle model, and frees exactly its page.
  Result<Reservation> r = pool.begin_load("small/513", src(9999), 100, 0);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].footprint, 4096u);
  EXPECT_EQ(pool.bytes_used(), c.budget);
  EXPECT_EQ(pool.bytes_evicted(), 4096u);

  // An empty model holds nothing.
  pool.finish_load(r->entry.id, 0, layout::Format::kRaw, 0.001);
  r = pool.begin_load("empty", src(10000), 0, 0);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->evicted.empty());
  EXPECT_EQ(r->entry.footprint, 0u);
  ASSERT_TRUE(pool.self_check().ok()) << pool.self_check().message();
}

// A pool with budget to spare whose offset space holds four extents.
PoolConfig four_extents_of_offset_space() {
  PoolConfig c = config_of(64);
  c.data_end = c.data_begin + 4 * kUnit;
  return c;
}

// Fills `pool` with four READY one-page models; returns them in offset order.
std::vector<EntryInfo> load_four_small(Pool& pool) {
  std::vector<EntryInfo> out;
  for (int i = 0; i < 4; ++i) {
    auto r = pool.begin_load("m" + std::to_string(i), src(1 + i), 4096, i);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) break;
    pool.finish_load(r->entry.id, 0, layout::Format::kRaw, 0.001);
    out.push_back(r->entry);
  }
  std::sort(out.begin(), out.end(),
            [](const EntryInfo& a, const EntryInfo& b) { return a.offset < b.offset; });
  return out;
}

// Small models can fill the offset space before the budget: then idle ones
// are evicted for it, and when none is idle the refusal says what is full.
TEST(Pool, EvictsForOffsetSpaceWhenSmallModelsFillIt) {
  Pool pool(four_extents_of_offset_space());
  const std::vector<EntryInfo> small = load_four_small(pool);
  ASSERT_EQ(small.size(), 4u);
  for (const EntryInfo& e : small) pool.add_ref(e.id, 10);
  pool.release_ref(small[1].id);  // the only idle one
  auto r = pool.begin_load("m4", src(5), 4096, 20);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].id, small[1].id);
  pool.finish_load(r->entry.id, 0, layout::Format::kRaw, 0.001);
  pool.add_ref(r->entry.id, 30);

  r = pool.begin_load("m5", src(6), 4096, 40);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPoolFull);
  EXPECT_NE(r.status().message().find("offset space"), std::string::npos) << r.status().message();
  EXPECT_EQ(pool.entry_count(), 4u);
  ASSERT_TRUE(pool.self_check().ok()) << pool.self_check().message();
}

// A model whose extent spans several small ones' evicts until a contiguous
// range is free, not merely enough bytes of offset space.
TEST(Pool, EvictsUntilTheOffsetSpaceHasAContiguousRange) {
  Pool pool(four_extents_of_offset_space());
  const std::vector<EntryInfo> small = load_four_small(pool);
  ASSERT_EQ(small.size(), 4u);
  // LRU order by offset: 2nd, 4th, 1st, 3rd. The first two victims leave
  // two free extents that are not adjacent; the third joins the first.
  std::int64_t t = 10;
  for (std::size_t i : {1, 3, 0, 2}) {
    pool.add_ref(small[i].id, t++);
    pool.release_ref(small[i].id);
  }
  auto r = pool.begin_load("big", src(9), 2 * kUnit, 20);  // two extents
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->evicted.size(), 3u);
  EXPECT_EQ(r->evicted[0].id, small[1].id);
  EXPECT_EQ(r->evicted[1].id, small[3].id);
  EXPECT_EQ(r->evicted[2].id, small[0].id);
  EXPECT_EQ(r->entry.offset, small[0].offset);  // over two victims: only their room fits it
  EXPECT_EQ(pool.entry_count(), 2u);
  ASSERT_TRUE(pool.self_check().ok()) << pool.self_check().message();
}

TEST(Pool, ConfigNeedsAnAlignmentThatIsWholePages) {
  PoolConfig c = config_of(4);
  c.page_size = 0;
  EXPECT_EQ(Pool::validate_config(c).code(), ErrorCode::kBadRequest);
  c.page_size = 3 * 4096;  // 2 MiB is not a multiple of 12 KiB
  EXPECT_EQ(Pool::validate_config(c).code(), ErrorCode::kBadRequest);
  c.page_size = kUnit;
  EXPECT_TRUE(Pool::validate_config(c).ok());
}

TEST(Pool, EvictsIdleEntriesInPolicyOrderToMakeRoom) {
  Pool pool(config_of(10));
  const EntryId a = load(pool, "a", 4, 0);
  const EntryId b = load(pool, "b", 4, 1);
  pool.add_ref(a, 2);
  EXPECT_TRUE(pool.release_ref(a).empty());  // a is now more recent than b
  Result<Reservation> r = pool.begin_load("c", src(1), 4 * kUnit, 3);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].id, b);
  EXPECT_EQ(r->evicted[0].name, "b");
  EXPECT_EQ(pool.evictions(), 1u);
  EXPECT_EQ(pool.bytes_evicted(), 4 * kUnit);
  EXPECT_EQ(pool.bytes_used(), 8 * kUnit);
  // The new extent never overlaps one the caller still has to punch.
  const EntryInfo& v = r->evicted[0];
  EXPECT_TRUE(r->entry.offset >= v.offset + v.extent_size ||
              r->entry.offset + r->entry.extent_size <= v.offset);
  expect_consistent(pool);
}

TEST(Pool, PoolFullWhenEverythingIsReferencedChangesNothing) {
  Pool pool(config_of(10));
  const EntryId a = load(pool, "a", 5);
  const EntryId b = load(pool, "b", 5);
  pool.add_ref(a, 0);
  pool.add_ref(b, 0);
  Result<Reservation> r = pool.begin_load("c", src(1), 1, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPoolFull);
  EXPECT_EQ(pool.entry_count(), 2u);
  EXPECT_EQ(pool.bytes_used(), 10 * kUnit);
  EXPECT_EQ(pool.evictions(), 0u);
  expect_consistent(pool);
}

TEST(Pool, BeginLoadIsAtomicWhenEvictingWouldNotBeEnough) {
  Pool pool(config_of(10));
  load(pool, "idle", 4);
  pool.add_ref(load(pool, "held", 4), 0);
  Result<Reservation> r = pool.begin_load("c", src(1), 8 * kUnit, 0);
  EXPECT_EQ(r.status().code(), ErrorCode::kPoolFull);
  EXPECT_NE(pool.find_current("idle"), nullptr);  // not evicted in vain
  EXPECT_EQ(pool.evictions(), 0u);
  EXPECT_TRUE(pool.begin_load("c", src(1), 6 * kUnit, 0).ok());  // evicting idle suffices
  EXPECT_EQ(pool.find_current("idle"), nullptr);
  expect_consistent(pool);
}

TEST(Pool, FailedLoadLeavesNoEntry) {
  Pool pool(config_of(10));
  Result<Reservation> r = pool.begin_load("a", src(1), 3 * kUnit, 0);
  ASSERT_TRUE(r.ok());
  EntryInfo gone = pool.fail_load(r->entry.id);
  EXPECT_EQ(gone.id, r->entry.id);
  EXPECT_EQ(gone.offset, r->entry.offset);
  EXPECT_EQ(gone.extent_size, 3 * kUnit);
  EXPECT_EQ(pool.find_current("a"), nullptr);
  EXPECT_EQ(pool.entry_count(), 0u);
  EXPECT_EQ(pool.bytes_used(), 0u);
  EXPECT_EQ(pool.slots_used(), 0u);
  EXPECT_EQ(pool.evictions(), 0u);
  EXPECT_EQ(pool.fail_load(r->entry.id).id, 0u);  // twice: nothing
  const EntryId ready = load(pool, "b", 1);
  EXPECT_EQ(pool.fail_load(ready).id, 0u);  // READY entries are not failed
  EXPECT_NE(pool.get(ready), nullptr);
  expect_consistent(pool);
}

TEST(Pool, SlotExhaustionEvictsIdleOrGivesPoolFull) {
  Pool pool(config_of(100, /*slots=*/2));
  const EntryId a = load(pool, "a", 1, 0);
  const EntryId b = load(pool, "b", 1, 1);
  pool.add_ref(b, 2);
  Result<Reservation> r = pool.begin_load("c", src(1), kUnit, 3);  // takes a's slot
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].id, a);
  EXPECT_EQ(r->entry.slot, r->evicted[0].slot);
  r = pool.begin_load("d", src(1), kUnit, 4);  // c is LOADING, b referenced
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPoolFull);
  EXPECT_NE(r.status().message().find("slots"), std::string::npos) << r.status().message();
  EXPECT_EQ(pool.slots_used(), 2u);
  expect_consistent(pool);
}

}  // namespace
}  // namespace modelpool::broker
