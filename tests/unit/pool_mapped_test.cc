// File: tests/unit/pool_mapped_test.cc
//
// The mapped probe: an entry that a process outside the pool's bookkeeping
// still maps (a worker's byte-range lock that outlived a broker restart) is
// never evicted, dropped or reclaimed, whatever its refs; a superseded one is
// retained until reap() finds it unmapped.
#include <gtest/gtest.h>

#include <set>

#include "broker/pool/pool.hpp"
#include "pool_test_util.hpp"

namespace modelpool::broker {
namespace {

using testing::config_of;
using testing::expect_consistent;
using testing::kUnit;
using testing::load;
using testing::src;

// Offsets of the extents a pretend worker maps.
struct Mapped {
  std::set<std::uint64_t> offsets;
  MappedProbe probe() {
    return [this](const EntryInfo& e) { return offsets.count(e.offset) != 0; };
  }
};

TEST(PoolMapped, MappedIdleEntryIsNotEvictedForRoom) {
  Pool pool(config_of(10));
  Mapped m;
  pool.set_mapped_probe(m.probe());
  load(pool, "a", 6);
  m.offsets.insert(pool.find_current("a")->offset);
  Result<Reservation> r = pool.begin_load("b", src(2), 6 * kUnit, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPoolFull);
  EXPECT_NE(pool.find_current("a"), nullptr);
  m.offsets.clear();
  r = pool.begin_load("b", src(2), 6 * kUnit, 20);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1U);
  EXPECT_EQ(r->evicted[0].name, "a");
  expect_consistent(pool);
}

TEST(PoolMapped, WatermarkAdminEvictAndClearSpareMappedEntries) {
  Pool pool(config_of(10));
  Mapped m;
  pool.set_mapped_probe(m.probe());
  load(pool, "a", 5);
  load(pool, "b", 4);
  m.offsets.insert(pool.find_current("a")->offset);
  m.offsets.insert(pool.find_current("b")->offset);
  EXPECT_TRUE(pool.enforce_watermark(100).empty());
  Result<EntryInfo> e = pool.evict("a");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), ErrorCode::kForbidden);
  EXPECT_NE(e.status().message().find("mapped"), std::string::npos) << e.status().message();
  EXPECT_TRUE(pool.clear().empty());
  m.offsets.erase(pool.find_current("b")->offset);
  std::vector<EntryInfo> cleared = pool.clear();
  ASSERT_EQ(cleared.size(), 1U);
  EXPECT_EQ(cleared[0].name, "b");
  expect_consistent(pool);
}

TEST(PoolMapped, SupersededGenerationIsRetainedWhileMappedThenReaped) {
  Pool pool(config_of(20));
  Mapped m;
  pool.set_mapped_probe(m.probe());
  const EntryId g1 = load(pool, "a", 3, 0, /*inode=*/1);
  const std::uint64_t g1_offset = pool.get(g1)->offset;
  m.offsets.insert(g1_offset);
  // Idle but mapped: a new generation does not reclaim it.
  Result<Reservation> r = pool.begin_load("a", src(2), 3 * kUnit, 10);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->evicted.empty());
  EXPECT_NE(r->entry.offset, g1_offset) << "placed over an extent a worker maps";
  ASSERT_NE(pool.get(g1), nullptr);
  EXPECT_TRUE(pool.get(g1)->retained);
  EXPECT_FALSE(pool.get(g1)->current);
  EXPECT_EQ(pool.retained_count(), 1U);
  expect_consistent(pool);

  EXPECT_TRUE(pool.reap().empty());
  m.offsets.clear();
  std::vector<EntryInfo> freed = pool.reap();
  ASSERT_EQ(freed.size(), 1U);
  EXPECT_EQ(freed[0].id, g1);
  EXPECT_EQ(pool.retained_count(), 0U);
  EXPECT_EQ(pool.get(g1), nullptr);
  expect_consistent(pool);
}

TEST(PoolMapped, LastReleaseOfASupersededMappedGenerationRetainsIt) {
  Pool pool(config_of(20));
  Mapped m;
  pool.set_mapped_probe(m.probe());
  const EntryId g1 = load(pool, "a", 2, 0, 1);
  pool.add_ref(g1, 1);
  ASSERT_TRUE(pool.begin_load("a", src(2), 2 * kUnit, 2).ok());
  m.offsets.insert(pool.get(g1)->offset);
  EXPECT_TRUE(pool.release_ref(g1).empty());
  EXPECT_TRUE(pool.get(g1)->retained);
  expect_consistent(pool);
  m.offsets.clear();
  EXPECT_EQ(pool.reap().size(), 1U);
  expect_consistent(pool);
}

TEST(PoolMapped, AdoptionRetainsASupersededGenerationOnlyWhileMapped) {
  Pool pool(config_of(20));
  Mapped m;
  pool.set_mapped_probe(m.probe());
  auto ready = [](std::uint64_t generation, std::uint64_t offset, std::uint32_t slot) {
    EntryInfo e;
    e.name = "a";
    e.generation = generation;
    e.state = layout::EntryState::kReady;
    e.offset = offset;
    e.size = kUnit;
    e.extent_size = kUnit;
    e.slot = slot;
    e.source = src(generation);
    return e;
  };
  const std::uint64_t base = testing::kDataBegin;
  ASSERT_TRUE(pool.adopt(ready(3, base, 0)).ok());
  // Not mapped: superseded, the caller frees it.
  EXPECT_EQ(pool.adopt(ready(1, base + kUnit, 1)).code(), ErrorCode::kForbidden);
  // Mapped: kept, not current.
  m.offsets.insert(base + 2 * kUnit);
  ASSERT_TRUE(pool.adopt(ready(2, base + 2 * kUnit, 2)).ok());
  EXPECT_EQ(pool.find_current("a")->generation, 3U);
  EXPECT_EQ(pool.retained_count(), 1U);
  expect_consistent(pool);
  m.offsets.clear();
  ASSERT_EQ(pool.reap().size(), 1U);
  EXPECT_EQ(pool.entry_count(), 1U);
  expect_consistent(pool);
}

}  // namespace
}  // namespace modelpool::broker
