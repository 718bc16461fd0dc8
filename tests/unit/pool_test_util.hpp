// File: tests/unit/pool_test_util.hpp
//
// Small helpers shared by the pool's unit tests: sizes in alignment units, a
// config with a sparse offset space 16x the budget, a one-call load, and the
// consistency check.
#ifndef MODELPOOL_TESTS_UNIT_POOL_TEST_UTIL_HPP_
#define MODELPOOL_TESTS_UNIT_POOL_TEST_UTIL_HPP_

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "broker/pool/pool.hpp"

namespace modelpool::broker::testing {

inline constexpr std::uint64_t kUnit = 2ULL << 20;  // one extent alignment unit
inline constexpr std::uint64_t kDataBegin = 8 * kUnit;

inline PoolConfig config_of(std::uint64_t budget_units, std::uint32_t slots = 64,
                            std::string eviction = "lru") {
  PoolConfig c;
  c.budget = budget_units * kUnit;
  c.data_begin = kDataBegin;
  c.data_end = kDataBegin + 16 * c.budget;
  c.alignment = kUnit;
  c.catalog_capacity = slots;
  c.eviction = std::move(eviction);
  return c;
}

inline layout::SourceIdentity src(std::uint64_t inode) { return {1, inode, 100, 7}; }

// begin_load + finish_load of `units` alignment units; 0 (and a test failure)
// if begin_load refuses.
inline EntryId load(Pool& pool, const std::string& name, std::uint64_t units,
                    std::int64_t now_ns = 0, std::uint64_t inode = 1, double seconds = 1.0) {
  Result<Reservation> r = pool.begin_load(name, src(inode), units * kUnit, now_ns);
  EXPECT_TRUE(r.ok()) << name << ": " << r.status().to_string();
  if (!r.ok()) return 0;
  pool.finish_load(r->entry.id, 42, layout::Format::kRaw, seconds);
  return r->entry.id;
}

// The pool's own consistency check passes.
inline void expect_consistent(const Pool& pool) {
  Status s = pool.self_check();
  EXPECT_TRUE(s.ok()) << s.to_string();
}

}  // namespace modelpool::broker::testing

#endif  // MODELPOOL_TESTS_UNIT_POOL_TEST_UTIL_HPP_
