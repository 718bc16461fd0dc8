// File: tests/admin/metrics_test.cc
//
// /metrics scraped over real HTTP (a Boost.Beast client) from a broker
// started with --metrics-addr 127.0.0.1:0, and checked by a strict parser of
// the exposition format against the broker's own `stats` reply. Also proves
// the parser rejects what Prometheus would not, so a pass means something.
#include <gtest/gtest.h>

#include "admin_support.hpp"
#include "exposition_parser.hpp"

namespace modelpool::testing {
namespace {

// A name that needs every label escape the format has (but a newline,
// which model names may not contain).
const std::string kOddName = "odd \"quoted\" back\\slash.bin";

TEST(ExpositionParser, RejectsWhatPrometheusWouldNot) {
  const std::string head = "# HELP m_total Things.\n# TYPE m_total counter\n";
  EXPECT_NO_THROW(Exposition::parse(head + "m_total{a=\"x\\\"y\\\\z\\n\"} 3 1700000000000\n"));
  const std::vector<std::string> bad = {
      head + "m_total 3",                                 // no final newline
      "m_total 3\n",                                      // no TYPE
      head + "m_total{a=\"x\"} 1\nm_total{a=\"x\"} 2\n",  // repeated series
      head + "m_total{a=\"x\\q\"} 1\n",                   // bad escape
      head + "m_total{a=x} 1\n",                          // unquoted label value
      head + "m_total{1a=\"x\"} 1\n",                     // bad label name
      head + "m_total 0x10\n",                            // hex is not a float here
      head + "m_total -1\n",                              // negative counter
      head + "m-total 1\n",                               // bad metric name
      head + "m_total 1 2 3\n",                           // trailing text
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
      head + "# TYPE g gauge\ng 1\nm_total 2\n",  // family split in two blocks
  };
  for (const auto& text : bad) EXPECT_THROW(Exposition::parse(text), std::runtime_error) << text;
}

class Metrics : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.write_random("a.bin", 2 << 20, 1);  // one whole 2 MiB extent
    models_.write_random(kOddName, 1 << 20, 2);
    broker_.start();
    port_ = metrics_port(broker_);
    ASSERT_NE(port_, 0) << "ready line: " << broker_.ready_line();
  }

  ScratchDir models_;
  Broker broker_{models_.path(), {"--metrics-addr", "127.0.0.1:0"}};
  unsigned short port_ = 0;
};

TEST_F(Metrics, ScrapeIsValidExpositionThatAgreesWithStats) {
  ASSERT_EQ(ctl(broker_, {"load", kOddName}).code, 0);
  RawConn worker(broker_.worker_socket());
  ASSERT_TRUE(worker.request({{"op", "acquire"}, {"model", "a.bin"}})["ok"].get<bool>());  // a miss
  ASSERT_TRUE(worker.request({{"op", "acquire"}, {"model", "a.bin"}})["ok"].get<bool>());  // a hit

  const HttpReply r = http_get(port_, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/plain; version=0.0.4", 0), 0U) << r.content_type;
  Exposition e;
  try {
    e = Exposition::parse(r.body);
  } catch (const std::runtime_error& err) {
    FAIL() << err.what() << "\n" << r.body;
  }
  const json s = broker_.admin("stats");
  for (const auto& [name, f] : e.families()) {
    // The broker's own, and the process_* every Prometheus client exports.
    EXPECT_TRUE(name.starts_with("modelpool_") || name.starts_with("process_")) << name;
    EXPECT_FALSE(f.help.empty()) << name << " has no HELP";
    if (f.type == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << name;
    }
  }
  const std::vector<std::pair<std::string, std::string>> same = {
      {"modelpool_hits_total", "hits"},
      {"modelpool_misses_total", "misses"},
      {"modelpool_loads_total", "loads"},
      {"modelpool_loaded_bytes_total", "bytes_loaded"},
      {"modelpool_evictions_total", "evictions"},
      {"modelpool_used_bytes", "bytes_used"},
      {"modelpool_budget_bytes", "bytes_budget"},
      {"modelpool_handles", "handles"},
      {"modelpool_largest_free_extent_bytes", "largest_free_extent"},
      {"modelpool_mem_total_bytes", "mem_total"},
  };
  for (const auto& [metric, field] : same) {
    ASSERT_TRUE(e.value(metric).has_value()) << metric << " missing\n" << r.body;
    EXPECT_EQ(*e.value(metric), s[field].get<double>()) << metric;
  }
  EXPECT_EQ(*e.value("modelpool_hits_total"), 1);
  EXPECT_EQ(*e.value("modelpool_misses_total"), 1);
  EXPECT_EQ(*e.value("modelpool_loads_total"), 2);
  EXPECT_EQ(*e.value("modelpool_loaded_bytes_total"), (2 << 20) + (1 << 20));
  EXPECT_GE(*e.value("modelpool_clients"), 1);  // the worker (the stats call came later)
  EXPECT_GT(*e.value("modelpool_uptime_seconds"), 0);
  EXPECT_GT(*e.value("modelpool_mem_available_bytes"), 0);

  ASSERT_NE(e.family("modelpool_load_seconds"), nullptr);
  EXPECT_EQ(e.family("modelpool_load_seconds")->type, "histogram");
  EXPECT_EQ(*e.value("modelpool_load_seconds_count"), 2);
  EXPECT_EQ(*e.value("modelpool_load_seconds_bucket", {{"le", "+Inf"}}), 2);
  EXPECT_DOUBLE_EQ(*e.value("modelpool_load_seconds_sum"), s["load_seconds"].get<double>());

  // The label escapes round-trip to the exact name.
  EXPECT_EQ(e.value("modelpool_model_bytes", {{"model", kOddName}, {"generation", "1"}}), 1 << 20);
  EXPECT_EQ(e.value("modelpool_model_refs", {{"model", "a.bin"}, {"generation", "1"}}), 2);
  EXPECT_EQ(e.value("modelpool_model_refs", {{"model", kOddName}, {"generation", "1"}}), 0);
}

TEST_F(Metrics, EvictionsAndOtherPathsAndOffByDefault) {
  ASSERT_EQ(ctl(broker_, {"load", "a.bin"}).code, 0);
  ASSERT_EQ(ctl(broker_, {"evict", "a.bin"}).code, 0);
  const Exposition e = Exposition::parse(http_get(port_, "/metrics").body);
  EXPECT_EQ(e.value("modelpool_evictions_total"), 1);
  EXPECT_EQ(e.value("modelpool_evicted_bytes_total"), 2 << 20);
  EXPECT_EQ(e.value("modelpool_used_bytes"), 0);
  EXPECT_EQ(e.value("modelpool_models"), 0);

  EXPECT_EQ(http_get(port_, "/nothing-here").status, 404);

  ScratchDir other_models;
  Broker plain(other_models.path());
  plain.start();
  EXPECT_EQ(plain.ready_line().find("metrics"), std::string::npos) << plain.ready_line();
}

TEST(MetricsAddr, UnusableAddressIsOneSentenceAndExitOne) {
  ScratchDir models;
  Broker b(models.path(), {"--metrics-addr", "not-an-address"});
  const Outcome o = run(b.argv());
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "modelpoold: --metrics-addr must be HOST:PORT\n");
}

}  // namespace
}  // namespace modelpool::testing
