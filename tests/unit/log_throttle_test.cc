// File: tests/unit/log_throttle_test.cc
//
// The throttle behind the broker's burst warnings (failed accepts, refused
// connections): the first event is reported at once, later ones within the
// interval are held back and counted into the next report.
#include "broker/server/log_throttle.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace modelpool::broker {
namespace {

using namespace std::chrono_literals;
using Clock = LogThrottle::Clock;

TEST(LogThrottle, ReportsTheFirstAtOnceThenAtMostOncePerInterval) {
  LogThrottle t(10s);
  const Clock::time_point t0{1h};  // any instant, even one near the clock's epoch
  EXPECT_EQ(t.count(t0), 1u);
  EXPECT_EQ(t.count(t0 + 1s), 0u);
  EXPECT_EQ(t.count(t0 + 9s), 0u);
  EXPECT_EQ(t.count(t0 + 10s), 3u);  // this one and the two held back
  EXPECT_EQ(t.count(t0 + 19s), 0u);
  EXPECT_EQ(t.count(t0 + 30s), 2u);
}

TEST(LogThrottle, AFloodCostsOneReportPerInterval) {
  LogThrottle t(10s);
  const Clock::time_point t0{};  // the clock's epoch itself: still reported
  int reports = 0;
  std::uint64_t counted = 0;
  for (int i = 0; i < 100000; ++i) {  // 100,000 events over 25 s
    if (const std::uint64_t n = t.count(t0 + i * 250us)) {
      ++reports;
      counted += n;
    }
  }
  EXPECT_EQ(reports, 3);       // at 0 s, 10 s and 20 s
  EXPECT_EQ(counted, 80001u);  // what is held back after 20 s waits for the next report
}

}  // namespace
}  // namespace modelpool::broker
