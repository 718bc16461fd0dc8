// File: tests/admin/metrics_series_test.cc
//
// The series operators look for on /metrics, after a known sequence of
// requests: build info, process_*, acquire and release totals, loads in
// flight, acquires waiting for room, the pinned flag per model and the
// acquire latency histogram. And `promtool check metrics` on a scrape, when
// promtool (Debian package prometheus) is installed.
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <fstream>

#include "admin_support.hpp"
#include "exposition_parser.hpp"

namespace modelpool::testing {
namespace {

Exposition scrape(unsigned short port) {
  const HttpReply r = http_get(port, "/metrics");
  if (r.status != 200) throw std::runtime_error("/metrics: " + std::to_string(r.status));
  try {
    return Exposition::parse(r.body);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + "\n" + r.body);
  }
}

class MetricsSeries : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--metrics-addr", "127.0.0.1:0"});
    broker_.emplace(models_.path(), extra);
    broker_->start();
    port_ = metrics_port(*broker_);
    ASSERT_NE(port_, 0) << broker_->ready_line();
  }

  ScratchDir models_;
  std::optional<Broker> broker_;
  unsigned short port_ = 0;
};

TEST_F(MetricsSeries, AfterTwoAcquiresOneReleaseAndAPin) {
  models_.write_random("a.bin", 1 << 20, 1);
  models_.write_random("b.bin", 1 << 20, 2);
  start();
  ASSERT_EQ(ctl(*broker_, {"load", "b.bin", "--pin"}).code, 0);
  RawConn worker(broker_->worker_socket());
  const json first = worker.request({{"op", "acquire"}, {"model", "a.bin"}});  // a load
  ASSERT_TRUE(first["ok"].get<bool>()) << first;
  ASSERT_TRUE(worker.request({{"op", "acquire"}, {"model", "a.bin"}})["ok"].get<bool>());
  EXPECT_EQ(code_of(worker.request({{"op", "acquire"}, {"model", "none.bin"}})), "not_found");
  ASSERT_TRUE(worker.request({{"op", "release"}, {"handle", first["handle"]}})["ok"].get<bool>());

  const Exposition e = scrape(port_);
  const json s = broker_->admin("stats");
  EXPECT_EQ(e.value("modelpool_build_info", {{"version", s["version"].get<std::string>()}}), 1);
  EXPECT_FALSE(s["version"].get<std::string>().empty());
  EXPECT_EQ(e.value("modelpool_acquires_total"), 3) << "granted or not";
  EXPECT_EQ(e.value("modelpool_releases_total"), 1);
  EXPECT_EQ(e.value("modelpool_loads_in_flight"), 0);
  EXPECT_EQ(e.value("modelpool_acquires_waiting_for_room"), 0);
  EXPECT_EQ(e.value("modelpool_model_pinned", {{"model", "b.bin"}, {"generation", "1"}}), 1);
  EXPECT_EQ(e.value("modelpool_model_pinned", {{"model", "a.bin"}, {"generation", "1"}}), 0);

  ASSERT_NE(e.family("modelpool_acquire_seconds"), nullptr);
  EXPECT_EQ(e.family("modelpool_acquire_seconds")->type, "histogram");
  EXPECT_EQ(e.value("modelpool_acquire_seconds_count"), 2) << "the acquires granted";
  EXPECT_EQ(e.value("modelpool_acquire_seconds_bucket", {{"le", "+Inf"}}), 2);
  EXPECT_EQ(e.value("modelpool_acquire_seconds_bucket", {{"le", "60"}}), 2);
  EXPECT_GT(*e.value("modelpool_acquire_seconds_sum"), 0);
  EXPECT_LT(*e.value("modelpool_acquire_seconds_sum"), 60);
  EXPECT_GE(*e.value("modelpool_acquire_seconds_bucket", {{"le", "1e-05"}}), 0);

  const double now = static_cast<double>(::time(nullptr));
  const double started = *e.value("process_start_time_seconds");
  EXPECT_GT(started, now - 600);
  EXPECT_LE(started, now + 1);
  EXPECT_GT(*e.value("process_resident_memory_bytes"), 0);
  EXPECT_GT(*e.value("process_virtual_memory_bytes"), 0);
  EXPECT_GE(*e.value("process_open_fds"), 5);  // at least the sockets, the segment, the lock
  EXPECT_GE(*e.value("process_max_fds"), *e.value("process_open_fds"));
  ASSERT_TRUE(e.value("process_cpu_seconds_total").has_value());
  EXPECT_EQ(e.family("process_cpu_seconds_total")->type, "counter");
}

TEST_F(MetricsSeries, AnAcquireWaitingForRoomIsCountedThenTimed) {
  models_.write_random("held.bin", 12 << 20, 1);
  models_.write_random("next.bin", 8 << 20, 2);
  start({"--memory", "16MiB"});
  RawConn holder(broker_->worker_socket()), waiter(broker_->worker_socket());
  const json held = holder.request({{"op", "acquire"}, {"model", "held.bin"}});
  ASSERT_TRUE(held["ok"].get<bool>()) << held;
  waiter.send_frame(
      json({{"op", "acquire"}, {"id", 7}, {"model", "next.bin"}, {"wait_ms", 30000}}).dump());
  ASSERT_TRUE(
      eventually([&] { return scrape(port_).value("modelpool_acquires_waiting_for_room") == 1; }));
  EXPECT_EQ(scrape(port_).value("modelpool_acquire_seconds_count"), 1);

  ASSERT_TRUE(holder.request({{"op", "release"}, {"handle", held["handle"]}})["ok"].get<bool>());
  const auto granted = waiter.recv();
  ASSERT_TRUE(granted && (*granted)["ok"].get<bool>()) << granted.value_or(json());
  const Exposition e = scrape(port_);
  EXPECT_EQ(e.value("modelpool_acquires_waiting_for_room"), 0);
  EXPECT_EQ(e.value("modelpool_acquire_seconds_count"), 2);
  EXPECT_EQ(e.value("modelpool_releases_total"), 1);
}

// promtool's lint: names, units, HELP, counters ending in _total.
TEST_F(MetricsSeries, ScrapePassesPromtoolCheckMetrics) {
  const char* const kPromtool = "/usr/bin/promtool";
  if (::access(kPromtool, X_OK) != 0) {
    GTEST_SKIP() << kPromtool << " is not installed (Debian package prometheus): not checked";
  }
  models_.write_random("a.bin", 1 << 20, 1);
  models_.write_random("odd \"quoted\" back\\slash.bin", 1 << 20, 2);
  start();
  ASSERT_EQ(ctl(*broker_, {"load", "odd \"quoted\" back\\slash.bin", "--pin"}).code, 0);
  RawConn worker(broker_->worker_socket());
  ASSERT_TRUE(worker.request({{"op", "acquire"}, {"model", "a.bin"}})["ok"].get<bool>());
  const std::string body = http_get(port_, "/metrics").body;
  ScratchDir scratch;
  const std::string file = scratch.path() + "/scrape.txt";
  std::ofstream(file) << body;
  const Outcome o = run({"/bin/sh", "-c", std::string(kPromtool) + " check metrics < " + file});
  EXPECT_EQ(o.code, 0) << o.out << o.err << "\n" << body;
  EXPECT_EQ(o.out + o.err, "") << body;
}

}  // namespace
}  // namespace modelpool::testing
