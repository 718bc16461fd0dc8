// File: tests/budget/manifest_test.cc
//
// The manifest (--manifest FILE) and preloading through the real broker:
// sha256 checked before a model is READY, preloaded (and manifest-pinned)
// models resident before the first client connects, a broken manifest
// stopping the broker with its line and reason, and SIGHUP reloads logging
// what changed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cctype>
#include <chrono>

#include "budget_util.hpp"

namespace modelpool::testing {
namespace {

constexpr std::uint64_t kSize = 4 * kMiB;

std::string code_of(const json& reply) {
  return reply.value("ok", true) ? "ok" : reply["error"]["code"].get<std::string>();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Manifest, Sha256MatchLoadsAndMismatchFailsNamingBothDigests) {
  ScratchDir models;
  const std::string good = read_file(models.write_random("good.bin", kSize, 1));
  models.write_random("bad.bin", kSize, 2);
  const std::string want = sha256_hex(good);
  std::string upper = want;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string bad_actual = sha256_hex(read_file(models.path() + "/bad.bin"));
  const std::string manifest =
      models.write("manifest.json",
                   json{{"models",
                         {{"good", {{"path", "good.bin"}, {"sha256", upper}, {"revision", "r1"}}},
                          {"bad", {{"path", "bad.bin"}, {"sha256", want}}}}}}
                       .dump(2));
  Broker broker(models.path(), {"--manifest", manifest});
  broker.start();
  WorkerConn w(broker);
  json r = w.acquire("good");
  EXPECT_EQ(code_of(r), "ok") << r.dump();
  EXPECT_EQ(r["size"], kSize);
  for (int attempt = 0; attempt < 2; ++attempt) {  // no entry stays: checked again each time
    r = w.acquire("bad");
    ASSERT_EQ(code_of(r), "load_failed") << r.dump();
    const std::string msg = r["error"]["message"].get<std::string>();
    EXPECT_TRUE(contains(msg, want)) << msg;
    EXPECT_TRUE(contains(msg, bad_actual)) << msg;
  }
  EXPECT_EQ(current_models(broker), (std::set<std::string>{"good"}));
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["load_failures"], 2);
  EXPECT_EQ(stats["bytes_used"], kSize);
  EXPECT_EQ(self_check_problems(broker), json::array());
}

TEST(Manifest, PreloadedModelsAreResidentBeforeTheFirstClient) {
  ScratchDir models;
  std::uint32_t seed = 3;  // three different files: none shares another's copy
  for (const char* m : {"a.bin", "b.bin", "c.bin"}) models.write_random(m, kSize, seed++);
  const std::string manifest = models.write("manifest.json", R"({
  "b": {"path": "b.bin", "preload": true, "pin": true},
  "c": {"path": "c.bin"}
})");
  Broker broker(models.path(), {"--manifest", manifest, "--preload", "a.bin"});
  broker.start();
  // The first connection of anyone, right after the ready line.
  json list = broker.admin("list");
  ASSERT_EQ(list["models"].size(), 2U) << list.dump();
  EXPECT_EQ(list["models"][0]["name"], "a.bin");
  EXPECT_EQ(list["models"][0]["state"], "ready");
  EXPECT_EQ(list["models"][0]["pinned"], false);
  EXPECT_EQ(list["models"][1]["name"], "b");
  EXPECT_EQ(list["models"][1]["state"], "ready");
  EXPECT_EQ(list["models"][1]["pinned"], true);
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["loads"], 2);
  EXPECT_EQ(stats["acquires"], 0);
  // Manifest pins hold against clear; the plain preload does not.
  broker.admin("clear");
  EXPECT_EQ(current_models(broker), (std::set<std::string>{"b"}));
  WorkerConn w(broker);
  EXPECT_EQ(w.acquire("b")["cached"], true);
}

TEST(Manifest, PreloadWithTheWrongDigestStopsTheBroker) {
  ScratchDir models;
  const std::string bytes = read_file(models.write_random("m.bin", kSize, 4));
  const std::string wrong(64, '0');
  const std::string manifest =
      models.write("manifest.json",
                   json{{"m", {{"path", "m.bin"}, {"sha256", wrong}, {"preload", true}}}}.dump());
  Broker broker(models.path(), {"--manifest", manifest});
  auto [status, out] = run_command(broker.argv());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_TRUE(contains(out, "cannot preload \"m\"")) << out;
  EXPECT_TRUE(contains(out, wrong)) << out;
  EXPECT_TRUE(contains(out, sha256_hex(bytes))) << out;
  EXPECT_FALSE(contains(out, "ready")) << out;
}

TEST(Manifest, BrokenManifestStopsTheBrokerNamingLineAndReason) {
  ScratchDir models;
  models.write_random("a.bin", kSize, 5);
  struct Case {
    const char* text;
    const char* line;
    const char* reason;
  };
  const Case cases[] = {
      {"{\n  \"a\": \"a.bin\",\n  \"b\": \"a.bin\"\n  \"c\": \"a.bin\"\n}\n", "line 4",
       "not valid JSON"},
      {"{\"models\": {\n  \"a\": \"a.bin\",\n\n  \"b\": {\"path\": \"a.bin\", \"pinned\": "
       "true}\n}}\n",
       "line 4", "unknown field \"pinned\""},
      {"{\n  \"a\": {\"path\": \"a.bin\",\n    \"sha256\": \"abc\"}\n}\n", "line 2",
       "\"sha256\" must be 64 hex digits"},
      {"{\n  \"a\": \"a.bin\",\n  \"../up\": \"a.bin\"\n}\n", "line 3", "model \"../up\""},
      {"[1, 2]\n", "line 1", "must be a JSON object"},
      // The name appears earlier as a value: the error is on its key's line.
      {"{\n  \"x\": \"y\",\n  \"y\": 5\n}\n", "line 3", "model \"y\""},
  };
  for (const auto& c : cases) {
    const std::string manifest = models.write("manifest.json", c.text);
    Broker broker(models.path(), {"--manifest", manifest});
    auto [status, out] = run_command(broker.argv());
    ASSERT_TRUE(WIFEXITED(status)) << c.text;
    EXPECT_EQ(WEXITSTATUS(status), 1) << out;
    EXPECT_TRUE(contains(out, manifest + ": " + c.line)) << c.text << "\n-> " << out;
    EXPECT_TRUE(contains(out, c.reason)) << c.text << "\n-> " << out;
  }
}

TEST(Manifest, SighupReloadLogsWhatChanged) {
  ScratchDir models;
  for (const char* m : {"a.bin", "b.bin", "c.bin", "d.bin"}) models.write_random(m, kSize, 6);
  const std::string manifest =
      models.write("manifest.json", R"({"a": "a.bin", "b": "b.bin", "c": "c.bin"})");
  Broker broker(models.path(), {"--manifest", manifest, "--log-level", "info"});
  broker.capture_stderr(models.path() + "/broker.log");
  broker.start();
  WorkerConn w(broker);
  EXPECT_EQ(code_of(w.acquire("c")), "ok");

  auto wait_for_log = [&](const std::string& part) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!contains(broker.stderr_text(), part) && std::chrono::steady_clock::now() < deadline) {
      broker.admin("health");  // a round trip through the event loop that handles the signal
    }
    return broker.stderr_text();
  };
  models.write("manifest.json", R"({"a": "a.bin", "b": {"path": "b.bin", "pin": true},
    "d": {"path": "d.bin", "preload": true}})");
  ASSERT_EQ(::kill(broker.pid(), SIGHUP), 0);
  std::string log = wait_for_log("reloaded:");
  EXPECT_TRUE(contains(log, "manifest " + manifest + " reloaded: added d; changed b; removed c"))
      << log;
  // The new preload (and pin) entries load without a client.
  admin_until(broker, "list", [](const json& l) {
    int ready = 0;
    for (const auto& row : l["models"]) ready += row["state"] == "ready" ? 1 : 0;
    return ready == 3;
  });
  EXPECT_EQ(model_row(broker, "d")["state"], "ready");
  EXPECT_EQ(model_row(broker, "b")["pinned"], true);
  EXPECT_EQ(code_of(w.acquire("c")), "not_found");  // no longer a manifest name

  models.write("manifest.json", "{\n  \"a\": \"a.bin\",\n  \"d\": 42\n}\n");
  ASSERT_EQ(::kill(broker.pid(), SIGHUP), 0);
  log = wait_for_log("not reloaded");
  EXPECT_TRUE(contains(log, "manifest not reloaded (keeping the old one)")) << log;
  EXPECT_TRUE(contains(log, "line 3")) << log;
  EXPECT_EQ(broker.admin("health")["status"], "ok");
  EXPECT_EQ(code_of(w.acquire("d")), "ok");  // the old manifest is still in force
  EXPECT_EQ(code_of(w.acquire("b")), "ok");
}

}  // namespace
}  // namespace modelpool::testing
