// File: broker/pool/eviction_policy.hpp
//
// Which idle entry to evict next. A policy only orders entries; it knows
// nothing of refcounts, pins or budgets — the caller says which entries may
// go through the `evictable` predicate of pick_victim(). That keeps policies
// replayable without a broker: the bench harness feeds a trace of
// insert/access/evict events and compares hit rates.
//
// Protocol: on_insert() once when an entry becomes resident (READY), then any
// number of on_access(), then exactly one of on_evict() (the pool evicted it
// to make room, usually the id pick_victim() returned) or on_remove() (it
// went for another reason: admin evict, failed load, replaced generation).
// Unknown ids are ignored by every call.
//
// Policies (make_eviction_policy):
//   "lru"  (default) least recently inserted-or-accessed first.
//   "gdsf" GreedyDual-Size-Frequency: priority = L + freq * cost / size with
//          cost = load seconds (when unknown, size at an assumed 1 GiB/s), and
//          L inflated to the victim's priority at each on_evict(); lowest
//          priority first, least recently touched among equals.
//
// Not thread-safe.
#ifndef MODELPOOL_BROKER_POOL_EVICTION_POLICY_HPP_
#define MODELPOOL_BROKER_POOL_EVICTION_POLICY_HPP_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace modelpool::broker {

using EntryId = std::uint64_t;

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  virtual std::string_view name() const = 0;
  // `size`: bytes the entry holds; `load_seconds` <= 0 means unknown.
  virtual void on_insert(EntryId id, std::uint64_t size, double load_seconds) = 0;
  virtual void on_access(EntryId id) = 0;
  virtual void on_remove(EntryId id) = 0;
  // The entry was evicted to make room. Default: same as on_remove().
  virtual void on_evict(EntryId id) { on_remove(id); }
  // The entry to evict next among those `evictable` accepts, or nullopt.
  // Does not change the policy's state: calling it repeatedly with a
  // predicate that rejects earlier answers lists victims in order.
  virtual std::optional<EntryId> pick_victim(const std::function<bool(EntryId)>& evictable) = 0;
};

inline constexpr std::string_view kDefaultEvictionPolicy = "lru";

// A new policy by name, or nullptr for unknown names.
std::unique_ptr<EvictionPolicy> make_eviction_policy(std::string_view name);

// Every name make_eviction_policy() accepts, the default first.
std::vector<std::string_view> eviction_policy_names();

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_POOL_EVICTION_POLICY_HPP_
