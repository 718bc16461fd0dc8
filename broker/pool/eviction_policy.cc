// File: broker/pool/eviction_policy.cc
//
// The two eviction policies and the factory that names them. LRU is a list
// in recency order; GDSF keeps entries in a set ordered by (priority, touch
// sequence) so picking a victim is a walk from the cheapest entry.
#include "broker/pool/eviction_policy.hpp"

#include <list>
#include <set>
#include <tuple>
#include <unordered_map>

namespace modelpool::broker {
namespace {

class LruPolicy final : public EvictionPolicy {
 public:
  std::string_view name() const override { return "lru"; }

  void on_insert(EntryId id, std::uint64_t /*size*/, double /*load_seconds*/) override {
    on_remove(id);
    order_.push_front(id);
    where_[id] = order_.begin();
  }

  void on_access(EntryId id) override {
    auto it = where_.find(id);
    if (it != where_.end()) order_.splice(order_.begin(), order_, it->second);
  }

  void on_remove(EntryId id) override {
    auto it = where_.find(id);
    if (it == where_.end()) return;
    order_.erase(it->second);
    where_.erase(it);
  }

  std::optional<EntryId> pick_victim(const std::function<bool(EntryId)>& evictable) override {
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
      if (evictable(*it)) return *it;
    }
    return std::nullopt;
  }

 private:
  std::list<EntryId> order_;  // most recent first
  std::unordered_map<EntryId, std::list<EntryId>::iterator> where_;
};

class GdsfPolicy final : public EvictionPolicy {
 public:
  std::string_view name() const override { return "gdsf"; }

  void on_insert(EntryId id, std::uint64_t size, double load_seconds) override {
    on_remove(id);
    const double bytes = size == 0 ? 1.0 : static_cast<double>(size);
    const double cost = load_seconds > 0 ? load_seconds : bytes / kAssumedBytesPerSecond;
    // Priorities are in seconds of loading per GiB, so they read sensibly.
    Item item{0, 1, cost * kGiB / bytes, 0};
    place(id, item);
  }

  void on_access(EntryId id) override {
    auto it = items_.find(id);
    if (it == items_.end()) return;
    Item item = it->second;
    order_.erase(key(id, item));
    item.freq += 1;
    place(id, item);
  }

  void on_remove(EntryId id) override {
    auto it = items_.find(id);
    if (it == items_.end()) return;
    order_.erase(key(id, it->second));
    items_.erase(it);
  }

  void on_evict(EntryId id) override {
    auto it = items_.find(id);
    if (it == items_.end()) return;
    if (it->second.priority > inflation_) inflation_ = it->second.priority;
    on_remove(id);
  }

  std::optional<EntryId> pick_victim(const std::function<bool(EntryId)>& evictable) override {
    for (const auto& k : order_) {
      if (evictable(std::get<2>(k))) return std::get<2>(k);
    }
    return std::nullopt;
  }

 private:
  static constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  static constexpr double kAssumedBytesPerSecond = kGiB;

  struct Item {
    double priority;
    double freq;
    double cost_per_gib;  // load seconds per GiB of this entry
    std::uint64_t seq;    // when last touched; older goes first among equals
  };
  using Key = std::tuple<double, std::uint64_t, EntryId>;

  static Key key(EntryId id, const Item& item) { return {item.priority, item.seq, id}; }

  void place(EntryId id, Item item) {
    item.priority = inflation_ + item.freq * item.cost_per_gib;
    item.seq = ++seq_;
    items_[id] = item;
    order_.insert(key(id, item));
  }

  double inflation_ = 0;  // L
  std::uint64_t seq_ = 0;
  std::unordered_map<EntryId, Item> items_;
  std::set<Key> order_;  // lowest priority first
};

}  // namespace

std::unique_ptr<EvictionPolicy> make_eviction_policy(std::string_view name) {
  if (name == "lru") return std::make_unique<LruPolicy>();
  if (name == "gdsf") return std::make_unique<GdsfPolicy>();
  return nullptr;
}

std::vector<std::string_view> eviction_policy_names() { return {"lru", "gdsf"}; }

}  // namespace modelpool::broker
