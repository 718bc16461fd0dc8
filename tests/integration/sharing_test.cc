// Multi-process behaviour of the core: real broker, real worker processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "broker_fixture.hpp"

namespace modelpool::testing {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

Child start_worker(const Broker& b, const std::string& model, const std::string& verify,
                   std::vector<std::string> extra = {"--hold"}) {
  std::vector<std::string> argv = {binary_path("clientlib/mp_worker"), "--socket",
                                   b.worker_socket(), "--model", model};
  if (!verify.empty()) argv.insert(argv.end(), {"--verify", verify});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return Child(argv);
}

json read_json_line(Child& c) {
  auto line = c.read_line();
  if (!line) return json{{"ok", false}, {"code", "no_output"}};
  return json::parse(*line);
}

// Polls the broker (each poll is a real round trip) until `pred` holds or 5 s pass.
template <typename Pred>
json admin_until(const Broker& b, const std::string& op, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  json r = b.admin(op);
  while (!pred(r) && std::chrono::steady_clock::now() < deadline) r = b.admin(op);
  return r;
}

TEST(Sharing, FourWorkersShareOneLoadAndOneCopy) {
  ScratchDir models;
  const std::uint64_t size = 96 * kMiB;
  const std::string file = models.write_random("org/model.bin", size, 7);
  Broker broker(models.path());
  broker.start();
  const std::uint64_t shmem_before = shmem_bytes();

  std::vector<Child> workers;
  for (int i = 0; i < 4; ++i) {
    workers.push_back(start_worker(broker, "org/model.bin", file));
    json r = read_json_line(workers.back());  // in order: the first one loads, the rest hit
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    EXPECT_TRUE(r["file_ok"].get<bool>());
    EXPECT_TRUE(r["checksum_ok"].get<bool>());
    EXPECT_EQ(r["size"], size);
    EXPECT_EQ(r["cached"].get<bool>(), i > 0);
  }
  const std::uint64_t shmem_after = shmem_bytes();
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["loads"], 1);
  EXPECT_EQ(stats["hits"], 3);
  EXPECT_EQ(stats["misses"], 1);
  // The pool holds the model once: Shmem grows by about 1x, not 4x.
  const double rise = static_cast<double>(shmem_after) - static_cast<double>(shmem_before);
  EXPECT_GT(rise, 0.9 * static_cast<double>(size));
  EXPECT_LT(rise, 1.3 * static_cast<double>(size));
  json list = broker.admin("list");
  ASSERT_EQ(list["models"].size(), 1U);
  EXPECT_EQ(list["models"][0]["refs"], 4);
  for (auto& w : workers) {
    w.close_stdin();
    EXPECT_EQ(w.wait(), 0);
  }
  list = admin_until(broker, "list", [](const json& l) { return l["models"][0]["refs"] == 0; });
  EXPECT_EQ(list["models"][0]["refs"], 0);
}

TEST(Sharing, KilledWorkerLosesItsReferences) {
  ScratchDir models;
  const std::string file = models.write_random("m.bin", 8 * kMiB);
  Broker broker(models.path());
  broker.start();
  Child w = start_worker(broker, "m.bin", file);
  ASSERT_TRUE(read_json_line(w)["ok"].get<bool>());
  EXPECT_EQ(broker.admin("list")["models"][0]["refs"], 1);
  w.kill(SIGKILL);
  int st = w.wait();
  ASSERT_TRUE(WIFSIGNALED(st));
  json list =
      admin_until(broker, "list", [](const json& l) { return l["models"][0]["refs"] == 0; });
  EXPECT_EQ(list["models"][0]["refs"], 0);
  // Nothing references it any more: it can be evicted.
  json ev = broker.admin("evict", {{"model", "m.bin"}});
  EXPECT_TRUE(ev["ok"].get<bool>()) << ev.dump();
}

TEST(Sharing, EightConcurrentColdAcquiresShareOneLoad) {
  ScratchDir models;
  const std::string file = models.write_random("big.bin", 256 * kMiB, 3);
  Broker broker(models.path());
  broker.start();
  std::vector<Child> workers;
  for (int i = 0; i < 8; ++i) workers.push_back(start_worker(broker, "big.bin", "", {}));
  for (auto& w : workers) {
    json r = read_json_line(w);
    EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
    EXPECT_TRUE(r["checksum_ok"].get<bool>());
    EXPECT_EQ(w.wait(), 0);
  }
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["loads"], 1);
  EXPECT_EQ(stats["misses"], 1);
  EXPECT_EQ(stats["hits"], 7);
}

TEST(Sharing, FailedLoadReachesEveryWaiterAndLeavesNoEntry) {
  ScratchDir models;
  // A safetensors header that promises more bytes than the file has.
  std::string bad(8, '\0');
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[1024,1024],"data_offsets":[0,4194304]}})";
  bad[0] = static_cast<char>(header.size());
  bad += header + std::string(1024, 'x');
  models.write("broken.safetensors", bad);
  Broker broker(models.path());
  broker.start();
  std::vector<Child> workers;
  for (int i = 0; i < 4; ++i) workers.push_back(start_worker(broker, "broken.safetensors", "", {}));
  for (auto& w : workers) {
    json r = read_json_line(w);
    EXPECT_FALSE(r["ok"].get<bool>());
    EXPECT_EQ(r["code"], "load_failed") << r.dump();
    EXPECT_EQ(w.wait() >> 8, 1);
  }
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["models"].size(), 0U);
  EXPECT_EQ(stats["bytes_used"], 0);
  EXPECT_EQ(stats["loads"], 0);
  EXPECT_TRUE(broker.admin("selfcheck")["consistent"].get<bool>());
}

TEST(Sharing, WritingThroughTheViewFaultsAndChangesNothing) {
  ScratchDir models;
  const std::string file = models.write_random("ro.bin", 4 * kMiB, 11);
  Broker broker(models.path());
  broker.start();
  Child w = start_worker(broker, "ro.bin", file, {"--write"});
  ASSERT_TRUE(read_json_line(w)["ok"].get<bool>());
  int st = w.wait();
  ASSERT_TRUE(WIFSIGNALED(st)) << "status " << st;
  EXPECT_TRUE(WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS);
  Child again = start_worker(broker, "ro.bin", file, {});
  json r = read_json_line(again);
  EXPECT_TRUE(r["file_ok"].get<bool>());
  EXPECT_TRUE(r["checksum_ok"].get<bool>());
  EXPECT_TRUE(r["cached"].get<bool>());
  EXPECT_EQ(again.wait(), 0);
}

}  // namespace
}  // namespace modelpool::testing
