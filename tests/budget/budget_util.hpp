// File: tests/budget/budget_util.hpp
//
// Helpers for the budget tests on top of the integration fixture: a worker
// connection that speaks the raw protocol (acquire with wait_ms, replies
// awaited with a deadline), admin polling with a deadline instead of sleeps,
// and readings of what the pool holds (current models, per-model rows,
// resident bytes of the segment file).
#ifndef MODELPOOL_TESTS_BUDGET_BUDGET_UTIL_HPP_
#define MODELPOOL_TESTS_BUDGET_BUDGET_UTIL_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "broker_fixture.hpp"

namespace modelpool::testing {

inline constexpr std::uint64_t kMiB = 1ULL << 20;

// One worker connection; at most one request in flight at a time (RawConn
// reads one frame per recv).
class WorkerConn {
 public:
  explicit WorkerConn(const Broker& broker) : conn_(broker.worker_socket()) {}
  // Sends an acquire and waits for its reply.
  json acquire(const std::string& model, std::optional<std::uint64_t> wait_ms = std::nullopt);
  // Sends an acquire without reading the reply (see reply_within).
  void send_acquire(const std::string& model, std::optional<std::uint64_t> wait_ms = std::nullopt);
  // The next reply if one arrives within `limit`, else nullopt.
  std::optional<json> reply_within(std::chrono::milliseconds limit);
  json release(std::uint64_t handle);
  // acquire + release: one access. Returns the acquire reply.
  json touch(const std::string& model);

 private:
  RawConn conn_;
  std::uint64_t next_id_ = 1;
};

// Repeats the admin request `op` (each a real round trip) until `pred` holds
// or `limit` passes; returns the last reply.
json admin_until(const Broker& broker, const std::string& op,
                 const std::function<bool(const json&)>& pred,
                 std::chrono::milliseconds limit = std::chrono::seconds(10));

// Names of the current (newest-generation) models in the pool.
std::set<std::string> current_models(const Broker& broker);
// The list row of the current generation of `name`, or null.
json model_row(const Broker& broker, const std::string& name);

// The broker's selfcheck problems (an empty array when the allocator and
// catalog agree). Read from "problems": the reply envelope's own "ok" would
// hide a payload field of that name.
json self_check_problems(const Broker& broker);

// Bytes the segment file occupies (st_blocks * 512): what the pool really
// holds in memory, whatever other processes do to Shmem.
std::uint64_t segment_resident_bytes(const Broker& broker);

// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(const std::string& bytes);

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_BUDGET_BUDGET_UTIL_HPP_
