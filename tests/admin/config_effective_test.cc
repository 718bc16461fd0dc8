// File: tests/admin/config_effective_test.cc
//
// The admin `config` op reports the values in effect, not the command line:
// --max-model-size 0 is the budget, --metrics-addr HOST:0 is the port the
// broker bound; and the start-up log prints a metrics URL that works.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "admin_support.hpp"

namespace modelpool::testing {
namespace {

// Workers open the segment at the path the hello reply gives, from their own
// working directory: a relative --segment-dir is made absolute at start.
TEST(ConfigEffective, ARelativeSegmentDirBecomesAbsolute) {
  ScratchDir models;
  const std::string base = "/dev/shm";
  const std::string rel = "mp-rel-" + std::to_string(::getpid());
  std::filesystem::create_directory(base + "/" + rel);
  const std::string cwd = std::filesystem::current_path();
  std::filesystem::current_path(base);
  Broker b(models.path(), {"--segment-dir", rel});
  b.start();  // the child starts in `base`
  std::filesystem::current_path(cwd);
  const json config = b.admin("config");
  const json stats = b.admin("stats");
  EXPECT_EQ(config["config"]["segment-dir"], base + "/" + rel) << config.dump();
  EXPECT_EQ(stats["segment_path"], base + "/" + rel + "/" + b.pool() + ".segment") << stats.dump();
  EXPECT_EQ(exit_code(b.stop(SIGTERM)), 0);
  std::filesystem::remove_all(base + "/" + rel);
}

TEST(ConfigEffective, MaxModelSizeZeroIsTheBudgetAndMetricsPortIsTheBoundOne) {
  ScratchDir models, logs;
  Broker b(models.path(), {"--metrics-addr", "127.0.0.1:0", "--log-level", "info"});
  b.capture_stderr(logs.path() + "/broker.log");
  b.start();
  const unsigned short port = metrics_port(b);
  ASSERT_NE(port, 0) << b.ready_line();

  const json reply = b.admin("config");
  ASSERT_TRUE(reply.value("ok", false)) << reply.dump();
  const json& config = reply["config"];
  const json stats = b.admin("stats");
  ASSERT_GT(stats.value("bytes_budget", 0ULL), 0ULL) << stats.dump();
  EXPECT_EQ(config["max-model-size"], stats["bytes_budget"]) << config.dump();
  EXPECT_EQ(config["memory"], stats["bytes_budget"]) << config.dump();
  EXPECT_EQ(config["metrics-addr"], "127.0.0.1:" + std::to_string(port)) << config.dump();

  // The URL in the log answers.
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  EXPECT_NE(b.stderr_text().find("metrics on " + url), std::string::npos) << b.stderr_text();
  EXPECT_EQ(b.stderr_text().find(":0/metrics"), std::string::npos) << b.stderr_text();
  EXPECT_EQ(http_get(port, "/metrics").status, 200);
}

TEST(ConfigEffective, AnExplicitMaxModelSizeIsShownAsGiven) {
  ScratchDir models;
  Broker b(models.path(), {"--max-model-size", "3MiB"});
  b.start();
  const json reply = b.admin("config");
  EXPECT_EQ(reply["config"]["max-model-size"], 3 << 20) << reply.dump();
  EXPECT_EQ(reply["config"]["metrics-addr"], "");
}

}  // namespace
}  // namespace modelpool::testing
