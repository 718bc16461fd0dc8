// File: bench/micro/policy_micro.cc
//
// Google Benchmark micro-benchmarks of the broker's eviction policies
// (broker/pool/eviction_policy.hpp): the cost of bookkeeping one access and
// of choosing one victim with N resident entries, for each policy. These run
// on the broker's event loop, so they bound acquire latency at scale.
#include <benchmark/benchmark.h>

#include <string>

#include "broker/pool/eviction_policy.hpp"

namespace mp = modelpool::broker;

namespace {

std::unique_ptr<mp::EvictionPolicy> filled(std::string_view name, std::int64_t n) {
  auto p = mp::make_eviction_policy(name);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto size = static_cast<std::uint64_t>((i % 97 + 1) << 20);
    p->on_insert(static_cast<mp::EntryId>(i), size, 0.01 * static_cast<double>(i % 13 + 1));
  }
  return p;
}

void BM_OnAccess(benchmark::State& state, std::string_view name) {
  const std::int64_t n = state.range(0);
  auto p = filled(name, n);
  std::uint64_t i = 0;
  for (auto _ : state) {
    p->on_access(static_cast<mp::EntryId>((i * 7919) % static_cast<std::uint64_t>(n)));
    ++i;
  }
}

// One victim choice and the evict + re-insert that follows it, so the
// resident set stays at N.
void BM_EvictOne(benchmark::State& state, std::string_view name) {
  const std::int64_t n = state.range(0);
  auto p = filled(name, n);
  const auto any = [](mp::EntryId) { return true; };
  for (auto _ : state) {
    auto v = p->pick_victim(any);
    if (!v) break;
    p->on_evict(*v);
    p->on_insert(*v, 64u << 20, 0.05);
  }
}

// pick_victim when most entries are referenced (not evictable): the
// predicate rejects 9 of 10 ids.
void BM_PickVictimMostlyBusy(benchmark::State& state, std::string_view name) {
  auto p = filled(name, state.range(0));
  const auto tenth = [](mp::EntryId id) { return id % 10 == 9; };
  for (auto _ : state) benchmark::DoNotOptimize(p->pick_victim(tenth));
}

void register_all() {
  for (std::string_view name : mp::eviction_policy_names()) {
    const std::string n(name);
    benchmark::RegisterBenchmark(("BM_OnAccess/" + n).c_str(), BM_OnAccess, name)
        ->RangeMultiplier(10)
        ->Range(10, 10000);
    benchmark::RegisterBenchmark(("BM_EvictOne/" + n).c_str(), BM_EvictOne, name)
        ->RangeMultiplier(10)
        ->Range(10, 10000);
    benchmark::RegisterBenchmark(("BM_PickVictimMostlyBusy/" + n).c_str(), BM_PickVictimMostlyBusy,
                                 name)
        ->RangeMultiplier(10)
        ->Range(10, 10000);
  }
}

const bool kRegistered = (register_all(), true);

}  // namespace
