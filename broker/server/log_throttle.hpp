// File: broker/server/log_throttle.hpp
//
// Reports an event that comes in bursts (a failed accept, a refused
// connection) at most once per interval, with how many happened since the
// last report: a flood of them costs a counter, not a log line each.
#ifndef MODELPOOL_BROKER_SERVER_LOG_THROTTLE_HPP_
#define MODELPOOL_BROKER_SERVER_LOG_THROTTLE_HPP_

#include <chrono>
#include <cstdint>

namespace modelpool::broker {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogThrottle(Clock::duration interval) : interval_(interval) {}

  // Counts one event. Returns how many to report (this one and those held
  // back since the last report) when a report is due now, else 0.
  std::uint64_t count(Clock::time_point now = Clock::now()) {
    ++held_;
    if (reported_ && now - last_ < interval_) return 0;
    reported_ = true;
    last_ = now;
    const std::uint64_t n = held_;
    held_ = 0;
    return n;
  }

 private:
  Clock::duration interval_;
  Clock::time_point last_{};
  std::uint64_t held_ = 0;
  bool reported_ = false;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_LOG_THROTTLE_HPP_
