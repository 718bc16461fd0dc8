// File: broker/server/stats.hpp
//
// The broker's counters (Ray's stats_collector): hits, misses, loads and the
// bytes and seconds they took, acquires and how long their grants took.
// Per-model rows come from the Pool. Event-loop thread only.
#ifndef MODELPOOL_BROKER_SERVER_STATS_HPP_
#define MODELPOOL_BROKER_SERVER_STATS_HPP_

#include <array>
#include <cstdint>

namespace modelpool::broker {

struct Stats {
  std::uint64_t hits = 0;    // acquires that needed no new load
  std::uint64_t misses = 0;  // acquires that started a load
  std::uint64_t loads = 0;   // loads that finished READY
  std::uint64_t load_failures = 0;
  std::uint64_t bytes_loaded = 0;
  double load_seconds = 0;
  std::uint64_t acquires = 0;  // acquire requests, granted or not
  std::uint64_t releases = 0;  // handles released (frames and rings; not disconnects)
  std::uint64_t bad_requests = 0;
  std::uint64_t connections_total = 0;
  // Load-time histogram buckets (seconds), for Prometheus.
  static constexpr std::array<double, 10> kLoadBuckets = {0.01, 0.05, 0.1, 0.25, 0.5,
                                                          1,    2.5,  5,   10,   30};
  std::array<std::uint64_t, kLoadBuckets.size()> load_bucket_counts{};

  // Acquire latency (seconds from the request to the grant reply), for
  // Prometheus: a warm grant takes microseconds, a cold one a load.
  static constexpr std::array<double, 10> kAcquireBuckets = {1e-5, 5e-5, 1e-4, 2.5e-4, 1e-3,
                                                             1e-2, 0.1,  1,    10,     60};
  std::array<std::uint64_t, kAcquireBuckets.size()> acquire_bucket_counts{};
  std::uint64_t acquires_granted = 0;
  double acquire_seconds = 0;  // their sum

  void record_acquire(double seconds) {
    ++acquires_granted;
    acquire_seconds += seconds;
    for (std::size_t i = 0; i < kAcquireBuckets.size(); ++i) {
      if (seconds <= kAcquireBuckets[i]) ++acquire_bucket_counts[i];
    }
  }

  void record_load(std::uint64_t bytes, double seconds) {
    ++loads;
    bytes_loaded += bytes;
    load_seconds += seconds;
    for (std::size_t i = 0; i < kLoadBuckets.size(); ++i) {
      if (seconds <= kLoadBuckets[i]) ++load_bucket_counts[i];
    }
  }
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_STATS_HPP_
