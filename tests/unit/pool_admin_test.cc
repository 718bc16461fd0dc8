// File: tests/unit/pool_admin_test.cc
//
// The pool's admin side: pins under pressure, clear, evict errors, watermark
// enforcement and grace periods, adoption after a restart, listing, config
// validation, and the gdsf policy driving a real pool.
#include <gtest/gtest.h>

#include "broker/pool/pool.hpp"
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

TEST(PoolAdmin, PinnedEntriesSurvivePressure) {
  Pool pool(config_of(10));
  load(pool, "pinned", 5, 0);
  ASSERT_TRUE(pool.set_pinned("pinned", true).ok());
  const EntryId b = load(pool, "b", 5, 1);
  Result<Reservation> r = pool.begin_load("c", src(1), 5 * kUnit, 2);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].id, b);  // b went, though "pinned" is older
  pool.finish_load(r->entry.id, 0, layout::Format::kRaw, 1);
  ASSERT_TRUE(pool.set_pinned("c", true).ok());
  EXPECT_EQ(pool.begin_load("d", src(1), kUnit, 3).status().code(), ErrorCode::kPoolFull);
  ASSERT_TRUE(pool.set_pinned("c", false).ok());
  EXPECT_TRUE(pool.begin_load("d", src(1), kUnit, 3).ok());
  EXPECT_NE(pool.find_current("pinned"), nullptr);
  EXPECT_EQ(pool.set_pinned("nope", true).code(), ErrorCode::kNotFound);
  expect_consistent(pool);
}

TEST(PoolAdmin, ClearEvictsOnlyIdleUnpinnedReadyEntries) {
  Pool pool(config_of(20));
  const EntryId idle = load(pool, "idle", 1);
  pool.add_ref(load(pool, "held", 1), 0);
  load(pool, "pinned", 1);
  ASSERT_TRUE(pool.set_pinned("pinned", true).ok());
  ASSERT_TRUE(pool.begin_load("loading", src(1), kUnit, 0).ok());
  std::vector<EntryInfo> out = pool.clear();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, idle);
  EXPECT_EQ(pool.entry_count(), 3u);
  EXPECT_EQ(pool.evictions(), 1u);
  EXPECT_TRUE(pool.clear().empty());
  expect_consistent(pool);
}

TEST(PoolAdmin, EvictRefusesWhatIsNotIdle) {
  Pool pool(config_of(20));
  EXPECT_EQ(pool.evict("missing").status().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(pool.begin_load("loading", src(1), kUnit, 0).ok());
  Result<EntryInfo> r = pool.evict("loading");
  EXPECT_EQ(r.status().code(), ErrorCode::kForbidden);
  EXPECT_NE(r.status().message().find("is loading"), std::string::npos);
  const EntryId held = load(pool, "held", 1);
  pool.add_ref(held, 0);
  pool.add_ref(held, 0);
  r = pool.evict("held");
  EXPECT_EQ(r.status().code(), ErrorCode::kForbidden);
  EXPECT_NE(r.status().message().find("in use by 2 handles"), std::string::npos);
  load(pool, "pinned", 1);
  ASSERT_TRUE(pool.set_pinned("pinned", true).ok());
  r = pool.evict("pinned");
  EXPECT_EQ(r.status().code(), ErrorCode::kForbidden);
  EXPECT_NE(r.status().message().find("is pinned"), std::string::npos);
  EXPECT_EQ(pool.evictions(), 0u);
  const EntryId idle = load(pool, "idle", 2);
  r = pool.evict("idle");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->id, idle);
  EXPECT_EQ(pool.evictions(), 1u);
  EXPECT_EQ(pool.bytes_evicted(), 2 * kUnit);
  expect_consistent(pool);
}

TEST(PoolAdmin, WatermarkEvictsDownToLowWatermark) {
  Pool pool(config_of(20));  // high 17 units, low 14 units
  EXPECT_EQ(pool.high_watermark_bytes(), 17 * kUnit);
  EXPECT_EQ(pool.low_watermark_bytes(), 14 * kUnit);
  const EntryId a = load(pool, "a", 5, 0);
  const EntryId b = load(pool, "b", 5, 1);
  const EntryId c = load(pool, "c", 5, 2);
  EXPECT_TRUE(pool.enforce_watermark(3).empty());  // 15 <= 17
  load(pool, "d", 5, 4);
  pool.add_ref(a, 5);  // a is referenced: b then c go
  std::vector<EntryInfo> out = pool.enforce_watermark(6);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, b);
  EXPECT_EQ(out[1].id, c);
  EXPECT_EQ(pool.bytes_used(), 10 * kUnit);
  EXPECT_TRUE(pool.enforce_watermark().empty());
  expect_consistent(pool);
}

TEST(PoolAdmin, WatermarkStopsWhenNothingMoreCanGo) {
  Pool pool(config_of(10));
  pool.add_ref(load(pool, "a", 5), 0);
  load(pool, "b", 4);
  ASSERT_TRUE(pool.set_pinned("b", true).ok());
  EXPECT_TRUE(pool.enforce_watermark(1).empty());
  EXPECT_EQ(pool.bytes_used(), 9 * kUnit);
}

TEST(PoolAdmin, AdoptRebuildsAllocatorAndSlots) {
  Pool pool(config_of(10));
  EntryInfo e;
  e.name = "a";
  e.generation = 3;
  e.state = EntryState::kReady;
  e.offset = kDataBegin + 4 * kUnit;
  e.size = 2 * kUnit - 1;
  e.extent_size = 2 * kUnit;
  e.slot = 7;
  e.source = src(1);
  e.pinned = true;
  e.refs = 9;  // refs of a dead broker mean nothing
  ASSERT_TRUE(pool.adopt(e).ok());
  const EntryInfo* a = pool.find_current("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->refs, 0u);
  EXPECT_TRUE(a->pinned);
  EXPECT_EQ(pool.bytes_used(), 2 * kUnit);
  expect_consistent(pool);

  EntryInfo overlap = e;
  overlap.name = "b";
  overlap.slot = 8;
  overlap.offset = kDataBegin + 5 * kUnit;
  EXPECT_EQ(pool.adopt(overlap).code(), ErrorCode::kInternal);
  EXPECT_EQ(pool.slots_used(), 1u);  // its slot was given back
  EntryInfo same_slot = e;
  same_slot.name = "c";
  same_slot.offset = kDataBegin;
  EXPECT_EQ(pool.adopt(same_slot).code(), ErrorCode::kInternal);
  EntryInfo older = e;
  older.generation = 2;
  older.slot = 9;
  older.offset = kDataBegin;
  EXPECT_EQ(pool.adopt(older).code(), ErrorCode::kForbidden);
  EntryInfo loading = older;
  loading.name = "d";
  loading.state = EntryState::kLoading;
  EXPECT_EQ(pool.adopt(loading).code(), ErrorCode::kBadRequest);
  EXPECT_EQ(pool.entry_count(), 1u);
  expect_consistent(pool);

  // New loads land around the adopted extent and keep counting generations.
  Result<Reservation> r = pool.begin_load("a", src(2), 4 * kUnit, 0);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->entry.generation, 4u);
  EXPECT_EQ(r->entry.offset, kDataBegin);  // the 4-unit hole before it
  EXPECT_NE(r->entry.slot, 7u);
  expect_consistent(pool);
}

TEST(PoolAdmin, GracePeriodProtectsAdoptedEntriesFromPressure) {
  Pool pool(config_of(10));
  EntryInfo e;
  e.name = "adopted";
  e.state = EntryState::kReady;
  e.generation = 1;
  e.offset = kDataBegin;
  e.size = e.extent_size = 9 * kUnit;
  ASSERT_TRUE(pool.adopt(e).ok());
  const EntryId id = pool.find_current("adopted")->id;
  EXPECT_TRUE(pool.set_evictable_after(id, 1000));
  EXPECT_FALSE(pool.set_evictable_after(id + 100, 1000));
  EXPECT_TRUE(pool.enforce_watermark(999).empty());
  EXPECT_EQ(pool.begin_load("b", src(1), 2 * kUnit, 999).status().code(), ErrorCode::kPoolFull);
  Result<Reservation> r = pool.begin_load("b", src(1), 2 * kUnit, 1000);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].id, id);
  expect_consistent(pool);
}

// Regression: enforce_watermark() with no time passed yet must still evict
// adopted entries that have no grace period.
TEST(PoolAdmin, WatermarkWithoutClockEvictsAdoptedEntriesWithoutGrace) {
  Pool pool(config_of(10));
  EntryInfo e;
  e.name = "adopted";
  e.state = EntryState::kReady;
  e.offset = kDataBegin;
  e.size = e.extent_size = 9 * kUnit;
  ASSERT_TRUE(pool.adopt(e).ok());
  EXPECT_EQ(pool.enforce_watermark().size(), 1u);
  EXPECT_EQ(pool.bytes_used(), 0u);
}

TEST(PoolAdmin, EntriesAreSortedByNameThenGeneration) {
  Pool pool(config_of(20));
  load(pool, "b", 1, 0, 1);
  const EntryId a1 = load(pool, "a", 1, 0, 1);
  pool.add_ref(a1, 0);
  load(pool, "a", 1, 0, 2);
  std::vector<const EntryInfo*> all = pool.entries();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]->name, "a");
  EXPECT_EQ(all[0]->generation, 1u);
  EXPECT_FALSE(all[0]->current);
  EXPECT_EQ(all[1]->name, "a");
  EXPECT_EQ(all[1]->generation, 2u);
  EXPECT_EQ(all[2]->name, "b");
}

TEST(PoolAdmin, ConfigValidationAndPolicyFallback) {
  EXPECT_TRUE(Pool::validate_config(config_of(10)).ok());
  PoolConfig c = config_of(10);
  c.eviction = "nope";
  EXPECT_EQ(Pool::validate_config(c).code(), ErrorCode::kBadRequest);
  EXPECT_EQ(Pool(c).config().eviction, "lru");
  c = config_of(10);
  c.low_watermark = 0.9;
  EXPECT_EQ(Pool::validate_config(c).code(), ErrorCode::kBadRequest);
  c = config_of(0);
  EXPECT_EQ(Pool::validate_config(c).code(), ErrorCode::kBadRequest);
  c = config_of(10);
  c.data_end = c.data_begin + kUnit - 1;
  EXPECT_EQ(Pool::validate_config(c).code(), ErrorCode::kBadRequest);
}

TEST(PoolAdmin, GdsfPoolKeepsExpensiveFrequentModel) {
  Pool pool(config_of(10, 64, "gdsf"));
  const EntryId slow = load(pool, "slow", 4, 0, 1, /*seconds=*/20.0);
  for (int i = 0; i < 3; ++i) {
    pool.add_ref(slow, i);
    EXPECT_TRUE(pool.release_ref(slow).empty());
  }
  const EntryId fast = load(pool, "fast", 4, 10, 1, /*seconds=*/0.2);
  pool.add_ref(fast, 11);
  EXPECT_TRUE(pool.release_ref(fast).empty());
  Result<Reservation> r = pool.begin_load("new", src(1), 4 * kUnit, 12);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].id, fast);
  expect_consistent(pool);
}

}  // namespace
}  // namespace modelpool::broker
