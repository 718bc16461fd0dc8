// File: bench/eviction/trace.cc
#include "bench/eviction/trace.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace modelpool::bench {

std::uint64_t Trace::total_bytes() const {
  return std::accumulate(sizes.begin(), sizes.end(), std::uint64_t{0});
}

double ReplayResult::hit_rate() const {
  return requests == 0 ? 0 : static_cast<double>(hits) / static_cast<double>(requests);
}

double ReplayResult::byte_hit_rate() const {
  return bytes_requested == 0
             ? 0
             : static_cast<double>(bytes_hit) / static_cast<double>(bytes_requested);
}

double modeled_load_seconds(std::uint64_t size) { return 0.020 + static_cast<double>(size) / 2e9; }

Trace make_zipf_trace(int models, std::size_t length, double alpha, std::uint64_t min_size,
                      std::uint64_t max_size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Trace t;
  std::uniform_real_distribution<double> u(std::log(static_cast<double>(min_size)),
                                           std::log(static_cast<double>(max_size)));
  for (int i = 0; i < models; ++i) {
    // Whole 4 KiB pages, as the pool accounts them.
    const auto bytes = static_cast<std::uint64_t>(std::exp(u(rng)));
    t.sizes.push_back((bytes + 4095) / 4096 * 4096);
  }
  std::vector<std::uint32_t> by_rank(static_cast<std::size_t>(models));
  std::iota(by_rank.begin(), by_rank.end(), 0u);
  std::shuffle(by_rank.begin(), by_rank.end(), rng);
  std::vector<double> weights;
  for (int r = 1; r <= models; ++r) weights.push_back(1.0 / std::pow(r, alpha));
  std::discrete_distribution<std::size_t> zipf(weights.begin(), weights.end());
  t.requests.reserve(length);
  for (std::size_t i = 0; i < length; ++i) t.requests.push_back(by_rank[zipf(rng)]);
  return t;
}

ReplayResult replay_policy(const Trace& trace, std::uint64_t budget,
                           broker::EvictionPolicy& policy) {
  ReplayResult r;
  std::vector<bool> resident(trace.sizes.size(), false);
  std::uint64_t used = 0;
  const auto any = [](broker::EntryId) { return true; };
  for (std::uint32_t id : trace.requests) {
    const std::uint64_t size = trace.sizes[id];
    ++r.requests;
    r.bytes_requested += size;
    if (resident[id]) {
      ++r.hits;
      r.bytes_hit += size;
      policy.on_access(id);
      continue;
    }
    if (size > budget) continue;
    while (used + size > budget) {
      auto victim = policy.pick_victim(any);
      if (!victim || !resident[*victim]) break;  // a policy bug; stop, don't spin
      policy.on_evict(*victim);
      resident[*victim] = false;
      used -= trace.sizes[*victim];
      ++r.evictions;
    }
    if (used + size > budget) continue;
    policy.on_insert(id, size, modeled_load_seconds(size));
    resident[id] = true;
    used += size;
  }
  return r;
}

ReplayResult replay_belady(const Trace& trace, std::uint64_t budget, bool times_size) {
  constexpr auto kNever = std::numeric_limits<std::size_t>::max();
  const std::size_t n = trace.requests.size();
  // next_use[i]: the position of the next request for the model of request i.
  std::vector<std::size_t> next_use(n, kNever);
  std::vector<std::size_t> seen(trace.sizes.size(), kNever);
  for (std::size_t i = n; i-- > 0;) {
    next_use[i] = seen[trace.requests[i]];
    seen[trace.requests[i]] = i;
  }
  std::vector<std::size_t> next(trace.sizes.size(), kNever);  // per resident model
  std::vector<std::uint32_t> resident;                        // a few dozen: scan it
  std::uint64_t used = 0;
  ReplayResult r;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t id = trace.requests[i];
    const std::uint64_t size = trace.sizes[id];
    ++r.requests;
    r.bytes_requested += size;
    if (std::find(resident.begin(), resident.end(), id) != resident.end()) {
      ++r.hits;
      r.bytes_hit += size;
    } else if (size <= budget) {
      while (used + size > budget) {
        // Furthest next use (never = infinitely far), or furthest distance x
        // size; larger first on ties.
        auto score = [&](std::uint32_t m) {
          const double d = next[m] == kNever ? 1e300 : static_cast<double>(next[m] - i);
          return std::pair(times_size ? d * static_cast<double>(trace.sizes[m]) : d,
                           trace.sizes[m]);
        };
        auto victim = std::max_element(resident.begin(), resident.end(),
                                       [&](auto a, auto b) { return score(a) < score(b); });
        used -= trace.sizes[*victim];
        resident.erase(victim);
        ++r.evictions;
      }
      resident.push_back(id);
      used += size;
    }
    next[id] = next_use[i];
  }
  return r;
}

}  // namespace modelpool::bench
