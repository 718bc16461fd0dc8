// Starting, refusing to start, stopping and restarting the real broker.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "broker_fixture.hpp"

namespace modelpool::testing {
namespace {

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(Lifecycle, HelpExitsZero) {
  auto [st, out] = run_command({binary_path("broker/modelpoold"), "--help"});
  EXPECT_EQ(exit_code(st), 0);
  EXPECT_NE(out.find("--models DIR"), std::string::npos);
  EXPECT_NE(out.find("--memory SIZE"), std::string::npos);
}

TEST(Lifecycle, MissingModelsDirIsOneClearSentence) {
  auto [st, out] = run_command({binary_path("broker/modelpoold"), "--models", "/nonexistent/models",
                                "--name", "mp-missing-" + std::to_string(::getpid()), "--run-dir",
                                "/tmp/mp-missing-run-" + std::to_string(::getpid())});
  EXPECT_EQ(exit_code(st), 1);
  EXPECT_NE(out.find("models directory /nonexistent/models does not exist"), std::string::npos)
      << out;
  std::filesystem::remove_all("/tmp/mp-missing-run-" + std::to_string(::getpid()));
}

TEST(Lifecycle, BudgetLargerThanShmIsRefused) {
  ScratchDir models;
  Broker b(models.path(), {"--memory", "900TiB"});
  auto [st, out] = run_command(b.argv());
  EXPECT_EQ(exit_code(st), 1);
  EXPECT_NE(out.find("larger than the free space of /dev/shm"), std::string::npos) << out;
}

TEST(Lifecycle, BadOptionsAreUsageErrors) {
  auto [st, out] =
      run_command({binary_path("broker/modelpoold"), "--models", "/tmp", "--memory", "lots"});
  EXPECT_EQ(exit_code(st), 2);
  EXPECT_NE(out.find("--memory"), std::string::npos) << out;
  auto [st2, out2] = run_command({binary_path("broker/modelpoold"), "--bogus"});
  EXPECT_EQ(exit_code(st2), 2);
}

TEST(Lifecycle, SecondBrokerForThePoolExits) {
  ScratchDir models;
  Broker first(models.path());
  first.start();
  auto argv = first.argv();
  auto [st, out] = run_command(argv);
  EXPECT_EQ(exit_code(st), 1);
  EXPECT_NE(out.find("already served by another modelpoold (pid " + std::to_string(first.pid())),
            std::string::npos)
      << out;
  // The first one is unharmed.
  EXPECT_TRUE(first.admin("health")["ok"].get<bool>());
}

TEST(Lifecycle, SigtermWithClientsAttachedExitsZeroAndKeepsSegment) {
  ScratchDir models;
  models.write_random("m.bin", 1 << 20);
  Broker b(models.path());
  b.start();
  RawConn worker(b.worker_socket());
  ASSERT_TRUE(worker.request({{"op", "acquire"}, {"model", "m.bin"}})["ok"].get<bool>());
  EXPECT_EQ(exit_code(b.stop(SIGTERM)), 0);
  EXPECT_FALSE(worker.recv().has_value()) << "the broker closes client connections on exit";
  EXPECT_TRUE(std::filesystem::exists(b.segment_path()));
  EXPECT_FALSE(std::filesystem::exists(b.worker_socket()));
  EXPECT_FALSE(std::filesystem::exists(b.admin_socket()));
}

TEST(Lifecycle, RestartAfterSigkillReadoptsWithoutReloading) {
  ScratchDir models;
  models.write_random("a.bin", 3 << 20, 1);
  models.write_random("b.bin", 5 << 20, 2);
  Broker b(models.path());
  b.start();
  json first_a, first_b;
  {
    RawConn w(b.worker_socket());
    first_a = w.request({{"op", "acquire"}, {"model", "a.bin"}});
    first_b = w.request({{"op", "acquire"}, {"model", "b.bin"}});
    ASSERT_TRUE(first_a["ok"].get<bool>());
  }
  b.kill9();
  b.start();
  json stats = b.admin("stats");
  EXPECT_EQ(stats["loads"], 0);
  EXPECT_EQ(stats["models"].size(), 2U);
  RawConn w(b.worker_socket());
  json again = w.request({{"op", "acquire"}, {"model", "a.bin"}});
  ASSERT_TRUE(again["ok"].get<bool>()) << again.dump();
  EXPECT_TRUE(again["cached"].get<bool>());
  EXPECT_EQ(again["offset"], first_a["offset"]);
  EXPECT_EQ(again["checksum"], first_a["checksum"]);
  EXPECT_EQ(again["generation"], first_a["generation"]);
  EXPECT_EQ(b.admin("stats")["loads"], 0) << "no model was read again";
  EXPECT_TRUE(b.admin("selfcheck")["consistent"].get<bool>());
}

TEST(Lifecycle, RemoveOnExitLeavesNothingBehind) {
  ScratchDir models;
  models.write_random("m.bin", 1 << 20);
  Broker b(models.path(), {"--remove-on-exit"});
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "m.bin"}})["ok"].get<bool>());
  EXPECT_EQ(exit_code(b.stop(SIGINT)), 0);
  EXPECT_FALSE(std::filesystem::exists(b.segment_path()));
}

}  // namespace
}  // namespace modelpool::testing
