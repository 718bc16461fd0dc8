// File: tests/admin/signals_logs_test.cc
//
// What the operator sees: the --log-file lines (one per event: connects and
// disconnects with pid and uid, loads with bytes, seconds and GB/s,
// evictions, client mistakes, stop), --log-level filtering, SIGTERM with
// clients attached and a request in flight, and SIGHUP reloading the
// manifest.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "admin_support.hpp"

namespace modelpool::testing {
namespace {

std::size_t count(const std::string& text, const std::regex& re) {
  return static_cast<std::size_t>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

class Logs : public ::testing::Test {
 protected:
  std::string log_path() const { return scratch_.path() + "/broker.log"; }
  ScratchDir models_, scratch_;
};

TEST_F(Logs, OneLinePerEventWithPidUidBytesAndRate) {
  models_.write_random("m.bin", 4 << 20, 1);
  Broker b(models_.path(), {"--log-level", "info", "--log-file", log_path()});
  b.start();
  Child worker({binary_path("clientlib/mp_worker"), "--socket", b.worker_socket(), "--model",
                "m.bin", "--hold"});
  auto line = worker.read_line();
  ASSERT_TRUE(line && json::parse(*line)["ok"].get<bool>()) << line.value_or("no output");
  worker.kill(SIGKILL);  // its handle goes with its connection
  ASSERT_EQ(exit_code(worker.wait()), 128 + SIGKILL);
  {
    RawConn rude(b.worker_socket());
    rude.request({{"op", "no-such-op"}});
  }
  ASSERT_TRUE(eventually([&] { return ctl(b, {"evict", "m.bin"}).code == 0; }));
  ASSERT_EQ(exit_code(b.stop(SIGTERM)), 0);

  const std::string log = read_file(log_path());
  const std::string who = "client [0-9]+ \\(pid " + std::to_string(worker.pid()) + ", uid " +
                          std::to_string(::getuid()) + "\\)";
  const std::string stamp = "\n[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+ ";
  EXPECT_EQ(count(log, std::regex(stamp + "info " + who + " connected to the worker socket\n")), 1U)
      << log;
  EXPECT_EQ(
      count(log, std::regex(stamp + "info " + who + " disconnected, released 1 handle\\(s\\)\n")),
      1U)
      << log;
  EXPECT_EQ(
      count(log, std::regex(
                     stamp +
                     "info load started: m\\.bin generation 1 \\(4\\.0 MiB\\) at offset [0-9]+\n")),
      1U)
      << log;
  EXPECT_EQ(
      count(log,
            std::regex(stamp + "info load finished: m\\.bin generation 1: 4\\.0 MiB in [0-9.]+ s "
                               "\\([0-9.]+ GB/s\\), format raw\n")),
      1U)
      << log;
  EXPECT_EQ(
      count(log,
            std::regex(stamp + "info evicted m\\.bin generation 1 \\(4\\.0 MiB, 1 accesses\\)\n")),
      1U)
      << log;
  EXPECT_EQ(
      count(log, std::regex(stamp + "warning client [0-9]+ \\(pid " + std::to_string(::getpid()) +
                            ", uid [0-9]+\\) sent unknown op \"no-such-op\"\n")),
      1U)
      << log;
  EXPECT_GE(
      count(log,
            std::regex(stamp + "info client [0-9]+ \\(pid [0-9]+, uid [0-9]+, admin\\) connected "
                               "to the admin socket\n")),
      1U)
      << "modelpoolctl evict\n"
      << log;
  EXPECT_EQ(count(log, std::regex(stamp + "info received SIGTERM, shutting down\n")), 1U) << log;
  EXPECT_EQ(count(log, std::regex(stamp + "info stopped; segment [^ ]+ kept for a restart\n")), 1U)
      << log;
}

TEST_F(Logs, LogLevelWarnKeepsOnlyWarnings) {
  models_.write_random("m.bin", 1 << 20, 1);
  Broker b(models_.path(), {"--log-level", "warn", "--log-file", log_path()});
  b.start();
  RawConn c(b.worker_socket());
  ASSERT_TRUE(c.request({{"op", "acquire"}, {"model", "m.bin"}})["ok"].get<bool>());
  c.request({{"op", "stats"}});  // an admin op on the worker socket
  ASSERT_EQ(exit_code(b.stop(SIGTERM)), 0);
  const std::string log = read_file(log_path());
  EXPECT_EQ(log.find(" info "), std::string::npos) << log;
  EXPECT_NE(log.find(" warning client "), std::string::npos) << log;
  EXPECT_NE(log.find("sent admin op \"stats\" on the worker socket"), std::string::npos) << log;
}

TEST(Signals, SigtermAnswersTheWaitingAcquireAndExitsZero) {
  ScratchDir models;
  models.write_random("held.bin", 12 << 20, 1);
  models.write_random("next.bin", 8 << 20, 2);
  Broker b(models.path(), {"--memory", "16MiB"});
  b.start();
  RawConn holder(b.worker_socket()), waiter(b.worker_socket());
  ASSERT_TRUE(holder.request({{"op", "acquire"}, {"model", "held.bin"}})["ok"].get<bool>());
  waiter.send_frame(
      json({{"op", "acquire"}, {"id", 7}, {"model", "next.bin"}, {"wait_ms", 30000}}).dump());
  ASSERT_TRUE(eventually([&] { return b.admin("stats")["waiting_for_room"] == 1; }));

  EXPECT_EQ(exit_code(b.stop(SIGTERM)), 0);
  const auto reply = waiter.recv();
  ASSERT_TRUE(reply.has_value()) << "the request in flight is answered before the broker exits";
  EXPECT_EQ((*reply)["id"], 7);
  EXPECT_EQ(code_of(*reply), "shutting_down") << *reply;
  EXPECT_FALSE(holder.recv().has_value());
  EXPECT_TRUE(std::filesystem::exists(b.segment_path()));
}

TEST(Signals, SigintAlsoExitsZero) {
  ScratchDir models;
  Broker b(models.path());
  b.start();
  RawConn attached(b.admin_socket());
  EXPECT_EQ(exit_code(b.stop(SIGINT)), 0);
  EXPECT_FALSE(attached.recv().has_value());
}

TEST_F(Logs, SighupReloadsTheManifestAndSaysWhatChanged) {
  models_.write_random("a.bin", 1 << 20, 1);
  models_.write_random("b.bin", 2 << 20, 2);
  const std::string manifest = scratch_.path() + "/manifest.json";
  std::ofstream(manifest) << R"({"alpha": "a.bin"})";
  Broker b(models_.path(),
           {"--manifest", manifest, "--log-level", "info", "--log-file", log_path()});
  b.start();
  std::ofstream(manifest, std::ios::trunc)
      << R"({"beta": {"path": "b.bin", "preload": true, "pin": true}})";
  ::kill(b.pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] {
    const json m = b.admin("list")["models"];
    return m.size() == 1 && m[0]["name"] == "beta" && m[0]["state"] == "ready" &&
           m[0]["pinned"] == true;
  })) << read_file(log_path());
  ASSERT_TRUE(eventually([&] {
    return read_file(log_path()).find("reloaded: added beta; removed alpha") != std::string::npos;
  })) << read_file(log_path());

  std::ofstream(manifest, std::ios::trunc) << "{ not json";
  ::kill(b.pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return read_file(log_path()).find("manifest not reloaded (keeping the old one)") !=
           std::string::npos;
  })) << read_file(log_path());
  RawConn c(b.worker_socket());
  EXPECT_TRUE(c.request({{"op", "acquire"}, {"model", "beta"}})["ok"].get<bool>())
      << "the old manifest holds";
  EXPECT_EQ(code_of(c.request({{"op", "acquire"}, {"model", "alpha"}})), "not_found");
  EXPECT_EQ(exit_code(b.stop(SIGTERM)), 0);
}

}  // namespace
}  // namespace modelpool::testing
