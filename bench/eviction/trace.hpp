// File: bench/eviction/trace.hpp
//
// Synthetic request traces for the eviction scenario, and their replay
// against a cache of a fixed byte budget: once through one of the broker's
// own EvictionPolicy objects (exactly the calls the pool makes), and offline
// with future knowledge: Belady-size (evict the resident model whose next
// request is furthest in the future; never-again first, larger first on
// ties) and its size-weighted variant (furthest distance x size, which
// favours object hit rate). With variable sizes both are heuristics, not
// proven optima; docs/benchmarks.md says so. Every request is admitted (a
// worker cannot use a model the broker did not load), as in the broker.
// Pure functions, no I/O.
#ifndef MODELPOOL_BENCH_EVICTION_TRACE_HPP_
#define MODELPOOL_BENCH_EVICTION_TRACE_HPP_

#include <cstdint>
#include <vector>

#include "broker/pool/eviction_policy.hpp"

namespace modelpool::bench {

struct Trace {
  std::vector<std::uint64_t> sizes;     // bytes, indexed by model id
  std::vector<std::uint32_t> requests;  // model ids in request order
  std::uint64_t total_bytes() const;
};

// `models` models with log-uniform sizes in [min_size, max_size]; requests
// drawn from Zipf(alpha) over a random permutation of the models, so
// popularity does not follow size. Deterministic for a given seed.
Trace make_zipf_trace(int models, std::size_t length, double alpha, std::uint64_t min_size,
                      std::uint64_t max_size, std::uint64_t seed);

struct ReplayResult {
  std::uint64_t requests = 0;
  std::uint64_t hits = 0;
  std::uint64_t bytes_requested = 0;
  std::uint64_t bytes_hit = 0;
  std::uint64_t evictions = 0;
  double hit_rate() const;
  double byte_hit_rate() const;
};

// The load time the replay reports to on_insert(): a fixed 20 ms plus the
// bytes at 2 GB/s, roughly what the broker measures from page cache.
double modeled_load_seconds(std::uint64_t size);

ReplayResult replay_policy(const Trace& trace, std::uint64_t budget,
                           broker::EvictionPolicy& policy);
ReplayResult replay_belady(const Trace& trace, std::uint64_t budget, bool times_size);

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCH_EVICTION_TRACE_HPP_
