// File: tests/fault/mapped_restart_test.cc
//
// No wrong bytes, whatever restarts: an extent that a live worker still maps
// is never punched, zeroed or reused, across a SIGKILL of the broker and
// whether or not the worker ever calls the broker again. Real worker
// processes (mp_worker --hold) hold the mappings and re-read their bytes on
// command; the broker is killed and restarted under them. Workers lock the
// extents they hold (OFD read locks), and the restarted broker probes the
// locks before it frees anything.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "broker_fixture.hpp"
#include "fault_support.hpp"

namespace modelpool::fault {
namespace {

using testing::Broker;
using testing::Child;
using testing::ScratchDir;

constexpr std::uint64_t kMiB = 1ULL << 20;

json next_json(Child& c) {
  auto line = c.read_line();
  if (!line) return json{{"ok", false}, {"code", "no_output"}};
  return json::parse(*line);
}

// A worker that acquires `model`, prints what it got, and holds it.
Child hold(const Broker& b, const std::string& model) {
  return Child({testing::binary_path("clientlib/mp_worker"), "--socket", b.worker_socket(),
                "--model", model, "--hold"});
}

// Asks the worker to hash its bytes again: true when they are the bytes it
// acquired.
bool still_same(Child& w) {
  if (!w.write_line("check")) return false;
  return next_json(w).value("same", false);
}

// Admin `list` rows of `name`, polled (each poll a round trip) until there
// are `want` of them or 5 s pass.
std::size_t rows_of(const Broker& b, const std::string& name, std::size_t want) {
  std::size_t n = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  do {
    n = 0;
    const json list = b.admin("list");
    for (const json& row : list["models"]) n += row["name"] == name ? 1 : 0;
  } while (n != want && std::chrono::steady_clock::now() < deadline);
  return n;
}

// (a) of the issue: a worker holds generation 1; the file is replaced and
// generation 2 loaded; the broker is SIGKILLed and restarted. The restarted
// broker used to drop generation 1 as superseded and punch it (zeros), and
// to place the next load over it (another model's bytes).
TEST(MappedRestart, SupersededGenerationAWorkerMapsSurvivesTheRestart) {
  ScratchDir models;
  models.write_random("m.bin", 8 * kMiB, 1);
  Broker b(models.path(), {"--memory", "24MiB", "--adopt-grace", "0"});
  b.start();
  Child w = hold(b, "m.bin");
  json got = next_json(w);
  ASSERT_TRUE(got.value("ok", false)) << got.dump();
  ASSERT_EQ(got["generation"], 1);

  models.write_random("m.bin", 8 * kMiB + 4096, 2);  // generation 2
  Conn c(b.worker_socket());
  json second = *c.request({{"op", "acquire"}, {"model", "m.bin"}});
  ASSERT_TRUE(second["ok"].get<bool>()) << second.dump();
  ASSERT_EQ(second["generation"], 2);
  c.close();
  b.kill9();
  b.start();

  ASSERT_TRUE(still_same(w)) << "the restart punched the bytes a worker maps";
  // Pressure: models that need every free byte of the budget. Generation
  // 1's extent must be neither freed for them nor reused by them.
  models.write_random("fill.bin", 2 * kMiB, 3);
  Conn other(b.worker_socket());
  json fill = *other.request({{"op", "acquire"}, {"model", "fill.bin"}});
  EXPECT_TRUE(fill["ok"].get<bool>()) << fill.dump();
  EXPECT_TRUE(still_same(w));
  json check = b.admin("selfcheck");
  EXPECT_TRUE(check.value("consistent", false)) << check.dump();

  // The worker's Client reconnects and acquires again (generation 2 now):
  // the generation-1 Model it still holds keeps its bytes.
  ASSERT_TRUE(w.write_line("acquire"));
  json again = next_json(w);
  ASSERT_TRUE(again.value("ok", false)) << again.dump();
  EXPECT_EQ(again["generation"], 2);
  EXPECT_TRUE(still_same(w));
  EXPECT_EQ(rows_of(b, "m.bin", 2), 2U) << "generation 1 is kept while mapped";

  // Once the worker is gone, generation 1's memory comes back.
  w.close_stdin();
  EXPECT_EQ(w.wait(), 0);
  EXPECT_EQ(rows_of(b, "m.bin", 1), 1U) << "generation 1 was not freed after its worker left";
  check = b.admin("selfcheck");
  EXPECT_TRUE(check.value("consistent", false)) << check.dump();
}

// (b) of the issue: a worker that never calls the broker after a restart
// used to lose its references once --adopt-grace passed, and its bytes
// turned to zeros under pressure.
TEST(MappedRestart, WorkerThatNeverReacquiresKeepsItsBytesUnderPressure) {
  ScratchDir models;
  models.write_random("held.bin", 12 * kMiB, 1);
  models.write_random("big.bin", 14 * kMiB, 2);
  Broker b(models.path(), {"--memory", "20MiB", "--adopt-grace", "0"});
  b.start();
  Child w = hold(b, "held.bin");
  json got = next_json(w);
  ASSERT_TRUE(got.value("ok", false)) << got.dump();
  b.kill9();
  b.start();

  // big.bin fits only if held.bin goes; held.bin has no references in the
  // new broker, but its worker still maps it.
  Conn c(b.worker_socket());
  json big = *c.request({{"op", "acquire"}, {"model", "big.bin"}});
  EXPECT_FALSE(big["ok"].get<bool>()) << big.dump();
  EXPECT_EQ(big["error"]["code"], "pool_full") << big.dump();
  EXPECT_TRUE(still_same(w)) << "bytes a worker maps were freed under pressure";
  json evict = b.admin("evict", {{"model", "held.bin"}});
  EXPECT_FALSE(evict["ok"].get<bool>()) << evict.dump();
  EXPECT_TRUE(still_same(w));

  w.close_stdin();
  EXPECT_EQ(w.wait(), 0);
  big = *c.request({{"op", "acquire"}, {"model", "big.bin"}});
  EXPECT_TRUE(big["ok"].get<bool>()) << "room came back when the worker left: " << big.dump();
}

}  // namespace
}  // namespace modelpool::fault
