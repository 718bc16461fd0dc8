// File: clientlib/tests/ctl_test.cc
//
// modelpoolctl: option parsing, exit codes and output, with FakeBroker's
// admin socket.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "clientlib/ctl/commands.hpp"
#include "clientlib/ctl/options.hpp"
#include "clientlib/ctl/render.hpp"
#include "clientlib/src/admin_client.hpp"
#include "clientlib/tests/fake_broker.hpp"

namespace modelpool::ctl {
namespace {

using modelpool::testing::FakeBroker;

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome ctl(const std::vector<std::string>& args) {
  auto options = parse_options(args);
  if (!options.ok()) return {kExitUsage, "", options.status().message()};
  std::ostringstream out;
  std::ostringstream err;
  const int code = run(*options, out, err);
  return {code, out.str(), err.str()};
}

nlohmann::json row(const std::string& name) {
  return {{"name", name},        {"size", 1ULL << 30}, {"refs", 2},
          {"generation", 1},     {"state", "ready"},   {"pinned", false},
          {"format", "gguf"},    {"accesses", 7},      {"last_access_unix_ms", 1},
          {"load_seconds", 0.42}};
}

TEST(CtlOptions, ParsesGlobalOptionsAnywhere) {
  auto o = parse_options({"load", "--pool", "p1", "m.gguf", "--pin", "--timeout-ms=50", "--json"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->command, "load");
  EXPECT_EQ(o->model, "m.gguf");
  EXPECT_TRUE(o->pin);
  EXPECT_TRUE(o->json);
  EXPECT_EQ(o->timeout, std::chrono::milliseconds(50));
  EXPECT_TRUE(admin_socket(*o).ends_with("/p1.admin.sock")) << admin_socket(*o);
  auto s = parse_options({"--socket", "/x/y.sock", "stats"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(admin_socket(*s), "/x/y.sock");
}

TEST(CtlOptions, TimeoutDefaultsToFiveSecondsAndTakesDurations) {
  auto d = parse_options({"stats"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->timeout, std::chrono::milliseconds(5000));
  EXPECT_FALSE(d->timeout_given);
  const std::vector<std::pair<std::string, std::optional<std::chrono::milliseconds>>> cases = {
      {"2", std::chrono::milliseconds(2000)},
      {"3s", std::chrono::milliseconds(3000)},
      {"250ms", std::chrono::milliseconds(250)},
      {"0", std::nullopt}};
  for (const auto& [text, want] : cases) {
    auto o = parse_options({"--timeout", text, "stats"});
    ASSERT_TRUE(o.ok()) << text << ": " << o.status().message();
    EXPECT_EQ(o->timeout, want) << text;
    EXPECT_TRUE(o->timeout_given);
  }
  auto v = parse_options({"--version"});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->version);
  EXPECT_EQ(version_text().rfind("modelpoolctl ", 0), 0U);
}

TEST(CtlOptions, UsageMistakes) {
  for (const auto& args : std::vector<std::vector<std::string>>{{},
                                                                {"bogus"},
                                                                {"load"},
                                                                {"stats", "extra"},
                                                                {"evict", "m", "--pin"},
                                                                {"--pool", "../x", "stats"},
                                                                {"--timeout-ms", "abc", "stats"},
                                                                {"--what", "stats"},
                                                                {"stats", "--pool"}}) {
    EXPECT_EQ(ctl(args).code, kExitUsage) << (args.empty() ? "" : args[0]);
  }
  auto h = parse_options({"--help"});
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->help);
}

TEST(CtlRun, NoBrokerIsExitThreeWithOneSentence) {
  auto r = ctl({"--run-dir", "/tmp/modelpool-no-such-dir", "--pool", "p", "health"});
  EXPECT_EQ(r.code, kExitNoBroker);
  EXPECT_EQ(r.err,
            "no modelpool broker is running for pool 'p' "
            "(no socket at /tmp/modelpool-no-such-dir/p.admin.sock)\n");
}

TEST(CtlRun, StatsSummaryAndTable) {
  FakeBroker broker;
  broker.set_admin_reply("stats", {{"pool", "pool"},
                                   {"hits", 6},
                                   {"misses", 1},
                                   {"loads", 1},
                                   {"bytes_loaded", 1ULL << 30},
                                   {"load_seconds", 0.42},
                                   {"evictions", 0},
                                   {"bytes_used", 1ULL << 30},
                                   {"bytes_budget", 16ULL << 30},
                                   {"clients", 3},
                                   {"uptime_s", 300},
                                   {"models", {row("llama.gguf")}}});
  auto r = ctl({"--socket", broker.admin_socket(), "stats"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.out.find("MODEL CACHE STATISTICS\n" + std::string(70, '=')), std::string::npos);
  EXPECT_NE(r.out.find("Hit Rate: 85.7% (6/7 requests)   Loads: 1 (1.0 GiB in 0.42 s, 2.6 GB/s)"
                       "   Evictions: 0\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Memory: 1.0 GiB used of 16.0 GiB budget   Clients: 3   Uptime: 5m"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\nNAME           SIZE  REFS  GEN  STATE  PINNED"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\nllama.gguf  1.0 GiB     2    1  ready  no"), std::string::npos) << r.out;
}

TEST(CtlRun, ListPagesThroughEveryRowAndJsonDropsTheEnvelope) {
  FakeBroker broker;
  broker.set_list_rows({row("a"), row("b"), row("c"), row("d"), row("e")}, 2);
  auto r = ctl({"--socket", broker.admin_socket(), "list", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["models"].size(), 5U);
  EXPECT_FALSE(j.contains("id"));
  EXPECT_FALSE(j.contains("ok"));
  auto human = ctl({"--socket", broker.admin_socket(), "list"});
  EXPECT_NE(human.out.find("\ne "), std::string::npos) << human.out;
}

TEST(CtlRun, BrokerErrorIsExitOneWithCodeAndMessage) {
  FakeBroker broker;
  auto r = ctl({"--socket", broker.admin_socket(), "evict", "m"});
  EXPECT_EQ(r.code, kExitBrokerError);
  EXPECT_EQ(r.err, "error: not_found: nothing for evict\n");
}

TEST(CtlRun, SelfcheckProblemsAreExitOne) {
  FakeBroker broker;
  broker.set_admin_reply("selfcheck", {{"problems", {"extent overlap"}}});
  auto r = ctl({"--socket", broker.admin_socket(), "selfcheck"});
  EXPECT_EQ(r.code, kExitBrokerError);
  EXPECT_NE(r.out.find("  - extent overlap"), std::string::npos);
  broker.set_admin_reply("selfcheck", {{"problems", nlohmann::json::array()}});
  EXPECT_EQ(ctl({"--socket", broker.admin_socket(), "selfcheck", "--json"}).code, kExitOk);
}

TEST(CtlRender, Ages) {
  EXPECT_EQ(format_age(5), "5s");
  EXPECT_EQ(format_age(300), "5m");
  EXPECT_EQ(format_age(7200), "2h");
  EXPECT_EQ(format_age(3 * 86400), "3d");
  EXPECT_EQ(format_duration(0.42), "0.42 s");
  EXPECT_EQ(format_duration(0.0035), "3.50 ms");
  EXPECT_EQ(format_duration(0), "-");
}

TEST(AdminClient, CallsReturnFieldsWithoutEnvelope) {
  FakeBroker broker;
  broker.set_admin_reply("health", {{"status", "ok"}, {"pid", 42}});
  auto admin = detail::AdminClient::connect(broker.admin_socket(), std::chrono::milliseconds(2000));
  ASSERT_TRUE(admin.ok()) << admin.status().message();
  auto h = admin->health();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ((*h)["pid"], 42);
  EXPECT_FALSE(h->contains("ok"));
  auto e = admin->evict("m");
  EXPECT_EQ(e.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(admin->health().ok());  // an error reply keeps the channel
}

}  // namespace
}  // namespace modelpool::ctl
