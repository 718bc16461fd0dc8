// File: tests/unit/pool_churn_test.cc
//
// Random acquire/release/reload/evict traffic against a small pool, checking
// after every step what the pool promises: the budget holds, referenced
// entries stay put at the same offset, a refused begin_load changes nothing,
// and self_check() passes.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "broker/pool/pool.hpp"
#include "pool_test_util.hpp"

namespace modelpool::broker {
namespace {

using testing::config_of;
using testing::kUnit;
using testing::src;

struct Churn {
  explicit Churn(std::string_view policy) : pool(config_of(32, 12, std::string(policy))) {}

  // One acquire of `name`: a hit, or a load (maybe of a new generation).
  void acquire(const std::string& name, std::uint64_t inode, std::int64_t now) {
    const EntryInfo* cur = pool.find_current(name);
    if (cur != nullptr && cur->source == src(inode)) {
      if (cur->state == layout::EntryState::kReady) hold(cur->id, now);
      return;
    }
    if (cur != nullptr && cur->state == layout::EntryState::kLoading) return;
    const std::uint64_t used = pool.bytes_used();
    const std::size_t count = pool.entry_count();
    Result<Reservation> r = pool.begin_load(name, src(inode), (1 + rng() % 12) * kUnit - 3, now);
    if (!r.ok()) {
      ASSERT_EQ(r.status().code(), ErrorCode::kPoolFull) << r.status().to_string();
      ASSERT_EQ(pool.bytes_used(), used);
      ASSERT_EQ(pool.entry_count(), count);
      return;
    }
    for (const EntryInfo& e : r->evicted) ASSERT_EQ(held.count(e.id), 0u) << e.name;
    if (rng() % 10 == 0) {
      pool.fail_load(r->entry.id);
      return;
    }
    pool.finish_load(r->entry.id, 0, layout::Format::kRaw, 0.1 * static_cast<double>(rng() % 50));
    hold(r->entry.id, now);
  }

  void hold(EntryId id, std::int64_t now) {
    pool.add_ref(id, now);
    ++held[id];
    offsets[id] = pool.get(id)->offset;
  }

  void release_random() {
    if (held.empty()) return;
    auto it = std::next(held.begin(), static_cast<long>(rng() % held.size()));
    const EntryId id = it->first;
    if (--it->second == 0) held.erase(it);
    for (const EntryInfo& e : pool.release_ref(id)) {
      ASSERT_EQ(e.id, id);
      ASSERT_FALSE(e.current);
    }
  }

  void check() {
    ASSERT_LE(pool.bytes_used(), pool.budget());
    for (const auto& [id, refs] : held) {
      const EntryInfo* e = pool.get(id);
      ASSERT_NE(e, nullptr) << "held entry " << id << " vanished";
      ASSERT_EQ(e->refs, refs);
      ASSERT_EQ(e->offset, offsets[id]);
    }
    Status s = pool.self_check();
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  Pool pool;
  std::mt19937_64 rng{7};
  std::map<EntryId, std::uint32_t> held;
  std::map<EntryId, std::uint64_t> offsets;
};

TEST(PoolChurn, InvariantsHoldUnderRandomTraffic) {
  for (std::string_view policy : eviction_policy_names()) {
    Churn c(policy);
    for (int step = 0; step < 3000; ++step) {
      const std::uint64_t op = c.rng() % 100;
      const std::string name = "m" + std::to_string(c.rng() % 20);
      if (op < 45) {
        c.acquire(name, 1 + (c.rng() % 30 == 0 ? 1 : 0), step);
      } else if (op < 88) {
        c.release_random();
      } else if (op < 92) {
        (void)c.pool.evict(name);
      } else if (op < 95) {
        (void)c.pool.set_pinned(name, c.rng() % 2 == 0);
      } else if (op < 98) {
        c.pool.enforce_watermark(step);
      } else {
        c.pool.clear();
      }
      ASSERT_NO_FATAL_FAILURE(c.check()) << policy << " step " << step;
      if (HasFatalFailure()) return;
    }
    EXPECT_GT(c.pool.evictions(), 0u) << policy;
  }
}

}  // namespace
}  // namespace modelpool::broker
