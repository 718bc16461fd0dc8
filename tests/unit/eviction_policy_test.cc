// File: tests/unit/eviction_policy_test.cc
//
// Eviction order of the policies on scripted sequences, replayed without a
// pool, the way the bench harness replays traces.
#include "broker/pool/eviction_policy.hpp"

#include <gtest/gtest.h>

#include <set>

namespace modelpool::broker {
namespace {

constexpr std::uint64_t kGiB = 1ULL << 30;

const auto kAny = [](EntryId) { return true; };

std::unique_ptr<EvictionPolicy> policy(std::string_view name) {
  auto p = make_eviction_policy(name);
  EXPECT_NE(p, nullptr) << name;
  return p;
}

// Victims in order, as repeated pick_victim() calls excluding earlier ones.
std::vector<EntryId> victim_order(EvictionPolicy& p) {
  std::set<EntryId> seen;
  std::vector<EntryId> out;
  while (auto v = p.pick_victim([&](EntryId id) { return seen.count(id) == 0; })) {
    seen.insert(*v);
    out.push_back(*v);
  }
  return out;
}

TEST(EvictionPolicy, FactoryKnowsItsNames) {
  const auto names = eviction_policy_names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names.front(), kDefaultEvictionPolicy);
  for (std::string_view n : names) EXPECT_EQ(policy(n)->name(), n);
  EXPECT_EQ(make_eviction_policy("fifo"), nullptr);
  EXPECT_EQ(make_eviction_policy(""), nullptr);
}

TEST(EvictionPolicy, EmptyOrAllRejectedGivesNothing) {
  for (std::string_view n : eviction_policy_names()) {
    auto p = policy(n);
    EXPECT_FALSE(p->pick_victim(kAny).has_value());
    p->on_insert(1, kGiB, 1.0);
    EXPECT_FALSE(p->pick_victim([](EntryId) { return false; }).has_value());
    p->on_access(99);  // unknown ids are ignored
    p->on_remove(99);
    p->on_evict(99);
    EXPECT_EQ(p->pick_victim(kAny), EntryId{1});
  }
}

TEST(LruPolicy, EvictsLeastRecentlyUsedFirst) {
  auto p = policy("lru");
  p->on_insert(1, kGiB, 1.0);
  p->on_insert(2, kGiB, 1.0);
  p->on_insert(3, kGiB, 1.0);
  p->on_access(1);
  EXPECT_EQ(victim_order(*p), (std::vector<EntryId>{2, 3, 1}));
  p->on_access(2);
  EXPECT_EQ(victim_order(*p), (std::vector<EntryId>{3, 1, 2}));
  p->on_remove(3);
  EXPECT_EQ(victim_order(*p), (std::vector<EntryId>{1, 2}));
  p->on_evict(1);
  EXPECT_EQ(victim_order(*p), (std::vector<EntryId>{2}));
}

TEST(LruPolicy, PickVictimSkipsWhatThePredicateRejects) {
  auto p = policy("lru");
  for (EntryId id = 1; id <= 4; ++id) p->on_insert(id, kGiB, 1.0);
  EXPECT_EQ(p->pick_victim([](EntryId id) { return id % 2 == 0; }), EntryId{2});
  EXPECT_EQ(p->pick_victim([](EntryId id) { return id > 2; }), EntryId{3});
}

// A frequently used model that takes 10 s to load outranks a cheap one that
// was touched more recently: GDSF evicts the cheap one, LRU the expensive one.
TEST(GdsfPolicy, KeepsFrequentExpensiveModelOverRecentCheapOne) {
  auto gdsf = policy("gdsf");
  auto lru = policy("lru");
  for (EvictionPolicy* p : {gdsf.get(), lru.get()}) {
    p->on_insert(1, kGiB, 10.0);  // expensive
    for (int i = 0; i < 5; ++i) p->on_access(1);
    p->on_insert(2, kGiB, 0.5);  // cheap, most recent
    p->on_access(2);
  }
  EXPECT_EQ(gdsf->pick_victim(kAny), EntryId{2});
  EXPECT_EQ(lru->pick_victim(kAny), EntryId{1});
}

TEST(GdsfPolicy, PrefersEvictingLargeModelsAtEqualCost) {
  auto p = policy("gdsf");
  p->on_insert(1, 4 * kGiB, 2.0);  // 0.5 s per GiB
  p->on_insert(2, kGiB, 2.0);      // 2 s per GiB
  p->on_insert(3, 2 * kGiB, 2.0);  // 1 s per GiB
  EXPECT_EQ(victim_order(*p), (std::vector<EntryId>{1, 3, 2}));
}

TEST(GdsfPolicy, FrequencyRaisesPriority) {
  auto p = policy("gdsf");
  p->on_insert(1, kGiB, 1.0);
  p->on_insert(2, kGiB, 1.0);
  EXPECT_EQ(p->pick_victim(kAny), EntryId{1});  // equal: least recently touched first
  p->on_access(1);
  EXPECT_EQ(p->pick_victim(kAny), EntryId{2});
}

TEST(GdsfPolicy, UnknownLoadTimeCostsSizeAtOneGibPerSecond) {
  auto p = policy("gdsf");
  p->on_insert(1, kGiB, 0.0);  // unknown: as if 1 s
  p->on_insert(2, kGiB, 2.0);
  p->on_insert(3, kGiB, 0.5);
  EXPECT_EQ(victim_order(*p), (std::vector<EntryId>{3, 1, 2}));
}

// L inflates to each victim's priority, so an entry whose frequency was
// earned long ago eventually ages out against newcomers. Plain removals do
// not inflate L.
TEST(GdsfPolicy, EvictionInflatesAgeSoStaleFavouritesAgeOut) {
  auto aged = policy("gdsf");
  auto unaged = policy("gdsf");
  for (EvictionPolicy* p : {aged.get(), unaged.get()}) {
    p->on_insert(1, kGiB, 1.0);
    for (int i = 0; i < 4; ++i) p->on_access(1);  // priority 5
  }
  EntryId next = 2;
  for (int round = 0; round < 3; ++round, ++next) {
    aged->on_insert(next, kGiB, 1.5);  // priority L + 1.5
    unaged->on_insert(next, kGiB, 1.5);
    ASSERT_EQ(aged->pick_victim(kAny), next) << "round " << round;
    aged->on_evict(next);  // L: 1.5, 3, 4.5
    unaged->on_remove(next);
  }
  aged->on_insert(next, kGiB, 1.5);    // priority 6 > 5
  unaged->on_insert(next, kGiB, 1.5);  // priority 1.5
  EXPECT_EQ(aged->pick_victim(kAny), EntryId{1});
  EXPECT_EQ(unaged->pick_victim(kAny), next);
}

}  // namespace
}  // namespace modelpool::broker
