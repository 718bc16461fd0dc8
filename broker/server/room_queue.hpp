// File: broker/server/room_queue.hpp
//
// Acquires that wait for room (`wait_ms`), served in arrival order, each
// until its deadline. The queue owns only the order and the deadlines; what
// serving a request means, what failing it means and what time it is are
// given to it (after Ray's CreateRequestQueue), so it is tested without a
// broker, sockets or timers (tests/unit/room_queue_test.cc).
//
// Order: a request that still finds no room keeps its place and everyone
// behind it waits too, so a stream of small models cannot starve a large
// one. A request whose client has gone leaves silently. The owner arms one
// timer for next_deadline() and calls expire() when it fires.
#ifndef MODELPOOL_BROKER_SERVER_ROOM_QUEUE_HPP_
#define MODELPOOL_BROKER_SERVER_ROOM_QUEUE_HPP_

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "shm/status.hpp"

namespace modelpool::broker {

template <typename Request>
class RoomQueue {
 public:
  using Clock = std::chrono::steady_clock;
  struct Hooks {
    // Tries `r` now. kPoolFull: still no room, it stays at its place.
    // Anything else and it leaves the queue: ok when served, an error that
    // `fail` is given.
    std::function<Status(Request& r)> serve;
    std::function<void(Request& r, const Status& why)> fail;
    // Its deadline passed: `waited` is what it asked to wait.
    std::function<void(Request& r, std::chrono::milliseconds waited)> expired;
    // Its client has gone: it leaves unanswered.
    std::function<bool(const Request& r)> gone;
    std::function<Clock::time_point()> now = [] { return Clock::now(); };
  };

  explicit RoomQueue(Hooks hooks) : hooks_(std::move(hooks)) {}

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }

  // Queues `r` at the back, until now + `wait`.
  void push(Request r, std::chrono::milliseconds wait) {
    const Clock::time_point deadline = hooks_.now() + wait;
    deadlines_.insert(deadline);
    entries_.push_back(Entry{std::move(r), deadline, wait});
  }

  // Serves from the front until one still finds no room. A call made while
  // serving (a serve hook that leads back here) returns at once: the loop
  // already running goes on.
  void serve() {
    if (serving_) return;
    serving_ = true;
    while (!entries_.empty()) {
      Entry& front = entries_.front();
      if (hooks_.gone(front.request)) {
        pop_front();
        continue;
      }
      Status st = hooks_.serve(front.request);
      if (st.code() == ErrorCode::kPoolFull) break;
      Entry done = pop_front();
      if (!st.ok()) hooks_.fail(done.request, st);
    }
    serving_ = false;
  }

  // Every request whose deadline has passed leaves, through `expired`, in
  // arrival order.
  void expire() {
    const Clock::time_point now = hooks_.now();
    std::vector<Entry> late;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->deadline <= now) {
        deadlines_.erase(deadlines_.find(it->deadline));
        late.push_back(std::move(*it));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    for (Entry& e : late) hooks_.expired(e.request, e.wait);
  }

  // The earliest deadline of the requests queued, if any.
  std::optional<Clock::time_point> next_deadline() const {
    if (deadlines_.empty()) return std::nullopt;
    return *deadlines_.begin();
  }

  // Takes every request out, in arrival order (the broker is stopping).
  std::vector<Request> drain() {
    std::vector<Request> out;
    out.reserve(entries_.size());
    for (Entry& e : entries_) out.push_back(std::move(e.request));
    entries_.clear();
    deadlines_.clear();
    return out;
  }

 private:
  struct Entry {
    Request request;
    Clock::time_point deadline;
    std::chrono::milliseconds wait;
  };
  Entry pop_front() {
    Entry e = std::move(entries_.front());
    entries_.pop_front();
    deadlines_.erase(deadlines_.find(e.deadline));
    return e;
  }

  Hooks hooks_;
  std::deque<Entry> entries_;
  std::multiset<Clock::time_point> deadlines_;
  bool serving_ = false;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_ROOM_QUEUE_HPP_
