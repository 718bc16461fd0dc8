// File: tests/unit/pool_alias_test.cc
//
// One resident copy per file: a name whose file another entry already holds
// becomes an alias of it (Pool::alias). The alias counts no bytes, its refs
// and pins protect the bytes it shares, it goes when they go, and it never
// hands its bytes back for freeing. Another file found to hold the same
// bytes once loaded folds into the resident copy (Pool::fold).
#include <gtest/gtest.h>

#include "broker/pool/pool.hpp"
#include "pool_test_util.hpp"

namespace modelpool::broker {
namespace {

using testing::config_of;
using testing::expect_consistent;
using testing::kUnit;
using testing::load;
using testing::src;

// "a" (4 units, inode 1) and "b" sharing it.
struct Shared {
  Pool pool{config_of(10)};
  EntryId a = 0, b = 0;
  Shared() {
    a = load(pool, "a", 4);
    Result<Reservation> r = pool.alias("b", a, 5);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (r.ok()) {
      EXPECT_TRUE(r->evicted.empty());
      b = r->entry.id;
    }
  }
};

TEST(PoolAlias, AnAliasSharesTheBytesAndCountsThemOnce) {
  Shared s;
  const EntryInfo* a = s.pool.get(s.a);
  const EntryInfo* b = s.pool.get(s.b);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->base, s.a);
  EXPECT_EQ(b->offset, a->offset);
  EXPECT_EQ(b->size, a->size);
  EXPECT_EQ(b->slot, a->slot);
  EXPECT_EQ(b->checksum, a->checksum);
  EXPECT_EQ(b->state, layout::EntryState::kReady);
  EXPECT_EQ(b->generation, 1U);
  EXPECT_EQ(b->footprint, 0U);
  EXPECT_EQ(s.pool.bytes_used(), 4 * kUnit);
  EXPECT_EQ(s.pool.slots_used(), 1U);
  EXPECT_EQ(s.pool.find_current("b"), b);
  EXPECT_EQ(s.pool.find_resident(src(1)), a) << "the copy with bytes, never an alias";
  EXPECT_EQ(s.pool.find_resident(src(9)), nullptr);
  s.pool.add_ref(s.b, 10);
  EXPECT_EQ(b->refs, 1U);
  EXPECT_EQ(a->refs, 1U) << "a ref through the alias holds the bytes";
  EXPECT_EQ(b->accesses, 1U);
  EXPECT_EQ(a->accesses, 0U) << "each name keeps its own statistics";
  expect_consistent(s.pool);
}

TEST(PoolAlias, AReferenceThroughTheAliasKeepsTheBytesFromEviction) {
  Shared s;
  s.pool.add_ref(s.b, 10);
  Result<Reservation> r = s.pool.begin_load("c", src(2), 8 * kUnit, 20);
  EXPECT_FALSE(r.ok()) << "the shared bytes are in use";
  auto gone = s.pool.evict("a");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), ErrorCode::kForbidden);
  EXPECT_TRUE(s.pool.release_ref(s.b).empty()) << "an alias never frees bytes";
  r = s.pool.begin_load("c", src(2), 8 * kUnit, 30);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1U) << "the bytes once, not once per name";
  EXPECT_EQ(r->evicted[0].id, s.a);
  EXPECT_EQ(s.pool.find_current("b"), nullptr) << "the alias goes with its bytes";
  expect_consistent(s.pool);
}

TEST(PoolAlias, APinThroughTheAliasPinsTheBytes) {
  Shared s;
  ASSERT_TRUE(s.pool.set_pinned("b", true).ok());
  EXPECT_FALSE(s.pool.get(s.a)->pinned);
  EXPECT_TRUE(s.pool.get(s.a)->holds_pin());
  EXPECT_FALSE(s.pool.evict("a").ok());
  EXPECT_TRUE(s.pool.clear().empty());
  EXPECT_NE(s.pool.find_current("b"), nullptr);
  expect_consistent(s.pool);
  ASSERT_TRUE(s.pool.set_pinned("b", false).ok());
  EXPECT_FALSE(s.pool.get(s.a)->holds_pin());
  const std::vector<EntryInfo> cleared = s.pool.clear();
  ASSERT_EQ(cleared.size(), 1U) << "one copy of bytes to free";
  EXPECT_EQ(cleared[0].id, s.a);
  EXPECT_EQ(s.pool.entry_count(), 0U);
  expect_consistent(s.pool);
}

TEST(PoolAlias, EvictingTheAliasKeepsTheBytes) {
  Shared s;
  auto gone = s.pool.evict("b");
  ASSERT_TRUE(gone.ok()) << gone.status().to_string();
  EXPECT_EQ(gone->base, s.a) << "the caller must not free an alias's bytes";
  EXPECT_EQ(gone->footprint, 0U);
  EXPECT_EQ(s.pool.find_current("b"), nullptr);
  EXPECT_NE(s.pool.find_current("a"), nullptr);
  EXPECT_EQ(s.pool.bytes_used(), 4 * kUnit);
  expect_consistent(s.pool);
}

TEST(PoolAlias, ANewGenerationOfTheFileRetiresItsAliases) {
  Shared s;
  s.pool.add_ref(s.b, 10);
  Result<Reservation> r = s.pool.begin_load("a", src(2), 4 * kUnit, 20);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->evicted.empty()) << "held through the alias";
  EXPECT_EQ(s.pool.find_current("b"), nullptr) << "the name looks its file up again";
  EXPECT_FALSE(s.pool.get(s.a)->current);
  expect_consistent(s.pool);
  const std::vector<EntryInfo> freed = s.pool.release_ref(s.b);
  ASSERT_EQ(freed.size(), 1U) << "the last ref frees the old bytes";
  EXPECT_EQ(freed[0].id, s.a);
  EXPECT_EQ(s.pool.get(s.b), nullptr);
  expect_consistent(s.pool);
}

TEST(PoolAlias, ANameThatGetsAFileOfItsOwnStopsSharing) {
  Shared s;
  ASSERT_TRUE(s.pool.set_pinned("b", true).ok());
  Result<Reservation> r = s.pool.begin_load("b", src(3), 2 * kUnit, 20);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->evicted.empty()) << "the shared bytes are not the alias's to free";
  EXPECT_EQ(r->entry.base, 0U);
  EXPECT_EQ(r->entry.generation, 2U);
  EXPECT_TRUE(r->entry.pinned) << "the name keeps its pin";
  EXPECT_FALSE(s.pool.get(s.a)->holds_pin());
  EXPECT_EQ(s.pool.get(s.b), nullptr);
  expect_consistent(s.pool);
}

TEST(PoolAlias, OnlyAReadyCopyWithBytesIsShared) {
  Shared s;
  EXPECT_FALSE(s.pool.alias("c", s.b, 10).ok()) << "not an alias of an alias";
  EXPECT_FALSE(s.pool.alias("a", s.a, 10).ok()) << "not of itself";
  EXPECT_FALSE(s.pool.alias("b", s.a, 10).ok()) << "already sharing it";
  Result<Reservation> loading = s.pool.begin_load("d", src(4), kUnit, 10);
  ASSERT_TRUE(loading.ok());
  EXPECT_FALSE(s.pool.alias("e", loading->entry.id, 10).ok()) << "not while it loads";
  EXPECT_FALSE(s.pool.alias("", s.a, 10).ok());
  expect_consistent(s.pool);
}

TEST(PoolAlias, ALoadOfTheSameBytesFoldsIntoTheResidentCopy) {
  Pool pool{config_of(10)};
  const EntryId a = load(pool, "a", 4);
  Result<Reservation> c = pool.begin_load("c", src(2), 4 * kUnit, 10);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(pool.bytes_used(), 8 * kUnit) << "both copies while the second loads";
  Result<Reservation> f = pool.fold(c->entry.id, a, 20);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(f->evicted.size(), 1U) << "the loaded copy, to free";
  EXPECT_EQ(f->evicted[0].id, c->entry.id);
  EXPECT_EQ(f->evicted[0].offset, c->entry.offset);
  const EntryInfo* alias = pool.find_current("c");
  ASSERT_NE(alias, nullptr);
  EXPECT_EQ(alias->base, a);
  EXPECT_EQ(alias->source, src(2)) << "its own file: not stale on the next acquire";
  EXPECT_EQ(alias->offset, pool.get(a)->offset);
  EXPECT_EQ(alias->state, layout::EntryState::kReady);
  EXPECT_EQ(pool.bytes_used(), 4 * kUnit) << "one copy";
  EXPECT_EQ(pool.find_resident(src(2)), nullptr) << "an alias holds no bytes of its own";
  pool.add_ref(alias->id, 30);
  EXPECT_EQ(pool.get(a)->refs, 1U) << "a ref through the alias holds the bytes";
  expect_consistent(pool);
}

TEST(PoolAlias, OnlyALoadingEntryFoldsAndOnlyIntoAReadyCopy) {
  Pool pool{config_of(20)};
  const EntryId a = load(pool, "a", 4);
  const EntryId b = load(pool, "b", 4, 0, 2);
  Result<Reservation> c = pool.begin_load("c", src(3), kUnit, 10);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(pool.fold(b, a, 20).ok()) << "b is ready: its bytes are its own";
  EXPECT_FALSE(pool.fold(c->entry.id, a, 20).ok()) << "another size cannot be the same bytes";
  Result<Reservation> d = pool.begin_load("d", src(4), 4 * kUnit, 10);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(pool.fold(d->entry.id, c->entry.id, 20).ok()) << "not into a loading entry";
  EXPECT_FALSE(pool.fold(d->entry.id, d->entry.id, 20).ok()) << "not into itself";
  EXPECT_FALSE(pool.fold(d->entry.id, 999, 20).ok()) << "not into an entry that has gone";
  EXPECT_EQ(pool.find_current("d")->state, layout::EntryState::kLoading) << "unchanged";
  expect_consistent(pool);
}

}  // namespace
}  // namespace modelpool::broker
