// File: tests/budget/room_test.cc
//
// What happens when a model does not fit, through the real broker: too_large
// at once for a model that can never fit, pool_full at once when everything
// is referenced or pinned, pool_full after wait_ms, waiters served in arrival
// order as room appears (a release, an unpin), a repository (a model of
// several files) waiting as a file does, and pinned models surviving
// pressure that evicts everything else.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <modelpool/client.hpp>
#include <vector>

#include "budget_util.hpp"

namespace modelpool::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr std::uint64_t kModel = 12 * kMiB;  // five fit in the 64 MiB budget
const std::vector<std::string> kArgs = {"--memory", "64MiB",           "--high-watermark",
                                        "1",        "--low-watermark", "1"};

// m0..m(n-1), 12 MiB each.
void write_models(ScratchDir& dir, int n) {
  for (int i = 0; i < n; ++i) {
    dir.write_random("m" + std::to_string(i), kModel, static_cast<std::uint32_t>(i + 1));
  }
}

std::string code_of(const json& reply) {
  return reply.value("ok", true) ? "ok" : reply["error"]["code"].get<std::string>();
}

// Acquires m0..m(n-1) on `w` and returns their handles.
std::vector<std::uint64_t> hold(WorkerConn& w, int n) {
  std::vector<std::uint64_t> handles;
  for (int i = 0; i < n; ++i) {
    json r = w.acquire("m" + std::to_string(i));
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    if (r.value("ok", false)) handles.push_back(r["handle"].get<std::uint64_t>());
  }
  return handles;
}

// A safetensors file of one U8 tensor `name` of `n` bytes, all `fill`.
std::string safetensors_of(const std::string& name, std::size_t n, char fill) {
  const std::string header = R"({")" + name + R"(":{"dtype":"U8","shape":[)" + std::to_string(n) +
                             R"(],"data_offsets":[0,)" + std::to_string(n) + "]}}";
  const std::uint64_t len = header.size();
  return std::string(reinterpret_cast<const char*>(&len), 8) + header + std::string(n, fill);
}

// The broker's stats once `n` acquires wait for room, or when `limit` ends.
json stats_when_waiting(const Broker& broker, std::uint64_t n,
                        milliseconds limit = std::chrono::seconds(10)) {
  return admin_until(
      broker, "stats", [n](const json& s) { return s["waiting_for_room"] == n; }, limit);
}

TEST(Room, ModelThatCanNeverFitIsTooLargeAtOnce) {
  ScratchDir models;
  models.write_random("huge", 65 * kMiB, 1);  // over the 64 MiB budget
  models.write_random("over_max", 20 * kMiB, 2);
  models.write_random("small", 4 * kMiB, 3);
  Broker broker(models.path(), {"--memory", "64MiB", "--max-model-size", "16MiB"});
  broker.start();
  WorkerConn w(broker);
  const auto t0 = steady_clock::now();
  json r = w.acquire("huge", 5000);  // wait_ms does not apply: it could never fit
  EXPECT_EQ(code_of(r), "too_large") << r.dump();
  r = w.acquire("over_max", 5000);
  EXPECT_EQ(code_of(r), "too_large") << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("maximum model size"), std::string::npos);
  EXPECT_LT(steady_clock::now() - t0, milliseconds(2000));
  EXPECT_EQ(code_of(w.acquire("small")), "ok");
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["loads"], 1);
  EXPECT_EQ(stats["waiting_for_room"], 0);
  EXPECT_EQ(current_models(broker), (std::set<std::string>{"small"}));

  Broker no_max(models.path(), {"--memory", "64MiB"});
  no_max.start();
  WorkerConn w2(no_max);
  r = w2.acquire("huge");
  EXPECT_EQ(code_of(r), "too_large") << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("64.0 MiB"), std::string::npos)
      << r.dump();
  EXPECT_EQ(code_of(w2.acquire("over_max")), "ok");  // the max defaults to the budget
}

TEST(Room, PoolFullAtOnceWithoutWaitAndAfterWaitMs) {
  ScratchDir models;
  write_models(models, 6);
  Broker broker(models.path(), kArgs);
  broker.start();
  WorkerConn holder(broker);
  ASSERT_EQ(hold(holder, 5).size(), 5U);
  WorkerConn w(broker);
  auto t0 = steady_clock::now();
  json r = w.acquire("m5");
  EXPECT_EQ(code_of(r), "pool_full") << r.dump();
  EXPECT_LT(steady_clock::now() - t0, milliseconds(1000));

  t0 = steady_clock::now();
  r = w.acquire("m5", 300);
  const auto waited = steady_clock::now() - t0;
  EXPECT_EQ(code_of(r), "pool_full") << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("300 ms"), std::string::npos) << r.dump();
  EXPECT_GE(waited, milliseconds(300));
  EXPECT_LT(waited, milliseconds(5000));
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["waiting_for_room"], 0);
  EXPECT_EQ(stats["bytes_used"], 5 * kModel);
  EXPECT_EQ(stats["evictions"], 0);
  EXPECT_EQ(current_models(broker).count("m5"), 0U);
}

TEST(Room, WaitersGetRoomInArrivalOrder) {
  ScratchDir models;
  write_models(models, 7);
  Broker broker(models.path(), kArgs);
  broker.start();
  WorkerConn holder(broker);
  const auto handles = hold(holder, 5);
  ASSERT_EQ(handles.size(), 5U);
  WorkerConn first(broker), second(broker);
  first.send_acquire("m5", 20000);
  ASSERT_EQ(stats_when_waiting(broker, 1)["waiting_for_room"], 1);
  second.send_acquire("m6", 20000);
  ASSERT_EQ(stats_when_waiting(broker, 2)["waiting_for_room"], 2);

  // One release makes room for one model: the first waiter gets it.
  ASSERT_TRUE(holder.release(handles[0])["ok"].get<bool>());
  auto r1 = first.reply_within(milliseconds(10000));
  ASSERT_TRUE(r1.has_value()) << "the first waiter got no reply after room appeared";
  EXPECT_EQ(code_of(*r1), "ok") << r1->dump();
  EXPECT_EQ((*r1)["model"], "m5");
  EXPECT_EQ((*r1)["cached"], false);
  EXPECT_EQ(broker.admin("stats")["waiting_for_room"], 1);
  EXPECT_FALSE(second.reply_within(milliseconds(0)).has_value());

  ASSERT_TRUE(holder.release(handles[1])["ok"].get<bool>());
  auto r2 = second.reply_within(milliseconds(10000));
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(code_of(*r2), "ok") << r2->dump();
  EXPECT_EQ((*r2)["model"], "m6");
  EXPECT_EQ(current_models(broker), (std::set<std::string>{"m2", "m3", "m4", "m5", "m6"}));
  EXPECT_EQ(broker.admin("stats")["waiting_for_room"], 0);
  EXPECT_EQ(self_check_problems(broker), json::array());
}

// A later arrival must not take the room an earlier waiter needs (the big
// waiter would starve behind a stream of small ones), be it a file or a
// repository.
class NewcomerWaitsBehind : public ::testing::TestWithParam<std::string> {};

TEST_P(NewcomerWaitsBehind, AnEarlierWaiter) {
  const std::string newcomer = GetParam();
  ScratchDir models;
  write_models(models, 6);
  models.write_random("big", 2 * kModel, 99);
  models.write("r/model-00001-of-00002.safetensors", safetensors_of("a", 5 * kMiB, 'a'));
  models.write("r/model-00002-of-00002.safetensors", safetensors_of("b", 5 * kMiB, 'b'));
  Broker broker(models.path(), kArgs);
  broker.start();
  WorkerConn holder(broker);
  const auto handles = hold(holder, 5);
  ASSERT_EQ(handles.size(), 5U);
  WorkerConn first(broker), second(broker);
  first.send_acquire("big", 20000);  // needs two models' room
  ASSERT_EQ(stats_when_waiting(broker, 1)["waiting_for_room"], 1);
  // Room for the newcomer, not for the first waiter.
  ASSERT_TRUE(holder.release(handles[0])["ok"].get<bool>());
  second.send_acquire(newcomer, 20000);
  json s = stats_when_waiting(broker, 2, milliseconds(2000));
  EXPECT_EQ(s["waiting_for_room"], 2) << newcomer << " jumped the queue";
  ASSERT_TRUE(holder.release(handles[1])["ok"].get<bool>());
  auto r1 = first.reply_within(milliseconds(10000));
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(code_of(*r1), "ok") << r1->dump();
  ASSERT_TRUE(holder.release(handles[2])["ok"].get<bool>());
  auto r2 = second.reply_within(milliseconds(10000));
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(code_of(*r2), "ok") << r2->dump();
  EXPECT_EQ((*r2)["model"], newcomer);
  EXPECT_EQ(self_check_problems(broker), json::array());
}

INSTANTIATE_TEST_SUITE_P(FileOrRepository, NewcomerWaitsBehind, ::testing::Values("m5", "r"));

TEST(Room, AWaiterThatHangsUpStopsHoldingUpTheQueue) {
  ScratchDir models;
  write_models(models, 6);
  models.write_random("big", 2 * kModel, 99);
  Broker broker(models.path(), kArgs);
  broker.start();
  WorkerConn holder(broker);
  const auto handles = hold(holder, 5);
  ASSERT_EQ(handles.size(), 5U);
  auto first = std::make_unique<WorkerConn>(broker);
  first->send_acquire("big", 20000);
  ASSERT_EQ(stats_when_waiting(broker, 1)["waiting_for_room"], 1);
  ASSERT_TRUE(holder.release(handles[0])["ok"].get<bool>());  // room for m5, not for big
  WorkerConn second(broker);
  second.send_acquire("m5", 20000);
  ASSERT_EQ(stats_when_waiting(broker, 2)["waiting_for_room"], 2);
  first.reset();  // the head of the queue hangs up: m5 fits now
  auto r = second.reply_within(milliseconds(5000));
  ASSERT_TRUE(r.has_value()) << "the second waiter stayed behind a waiter that had gone";
  EXPECT_EQ(code_of(*r), "ok") << r->dump();
  EXPECT_EQ(broker.admin("stats")["waiting_for_room"], 0);
}

TEST(Room, UnpinningGivesRoomToAWaiter) {
  ScratchDir models;
  write_models(models, 6);
  Broker broker(models.path(), kArgs);
  broker.start();
  WorkerConn holder(broker);
  ASSERT_EQ(hold(holder, 4).size(), 4U);
  json p = broker.admin("load", {{"model", "m4"}, {"pin", true}});
  ASSERT_TRUE(p["ok"].get<bool>()) << p.dump();
  EXPECT_EQ(p["pinned"], true);
  WorkerConn w(broker);
  w.send_acquire("m5", 20000);
  ASSERT_EQ(stats_when_waiting(broker, 1)["waiting_for_room"], 1);
  json u = broker.admin("unpin", {{"model", "m4"}});
  ASSERT_TRUE(u["ok"].get<bool>()) << u.dump();
  auto r = w.reply_within(milliseconds(10000));
  ASSERT_TRUE(r.has_value()) << "unpin made room but the waiter was not served";
  EXPECT_EQ(code_of(*r), "ok") << r->dump();
  EXPECT_EQ(current_models(broker).count("m4"), 0U);
}

TEST(Room, PinnedModelsSurvivePressure) {
  ScratchDir models;
  write_models(models, 10);
  Broker broker(models.path(), kArgs);
  broker.start();
  ASSERT_TRUE(broker.admin("load", {{"model", "m0"}, {"pin", true}})["ok"].get<bool>());
  ASSERT_TRUE(broker.admin("load", {{"model", "m1"}})["ok"].get<bool>());
  json pin = broker.admin("pin", {{"model", "m1"}});
  ASSERT_TRUE(pin["ok"].get<bool>()) << pin.dump();
  EXPECT_EQ(pin["pinned"], true);
  EXPECT_EQ(code_of(broker.admin("pin", {{"model", "absent"}})), "not_found");

  // Seven other models through the three remaining places: each load evicts,
  // never a pinned model.
  WorkerConn w(broker);
  for (int round = 0; round < 2; ++round) {
    for (int i = 2; i < 10; ++i) {
      ASSERT_EQ(code_of(w.touch("m" + std::to_string(i))), "ok");
      const auto resident = current_models(broker);
      ASSERT_EQ(resident.count("m0"), 1U) << "pinned m0 evicted";
      ASSERT_EQ(resident.count("m1"), 1U) << "pinned m1 evicted";
    }
  }
  EXPECT_GT(broker.admin("stats")["evictions"].get<int>(), 10);
  EXPECT_EQ(model_row(broker, "m0")["pinned"], true);
  json ev = broker.admin("evict", {{"model", "m0"}});
  EXPECT_EQ(code_of(ev), "forbidden") << ev.dump();
  broker.admin("clear");
  EXPECT_EQ(current_models(broker), (std::set<std::string>{"m0", "m1"}));

  // Pinned plus held fill the budget: the next model gets pool_full at once.
  WorkerConn holder(broker);
  for (int i = 2; i < 5; ++i) ASSERT_EQ(code_of(holder.acquire("m" + std::to_string(i))), "ok");
  json full = w.acquire("m5");
  EXPECT_EQ(code_of(full), "pool_full") << full.dump();
  // Unpinned, m0 is an ordinary idle model again and makes the room.
  ASSERT_TRUE(broker.admin("unpin", {{"model", "m0"}})["ok"].get<bool>());
  EXPECT_EQ(code_of(w.acquire("m5")), "ok");
  const auto resident = current_models(broker);
  EXPECT_EQ(resident.count("m0"), 0U);
  EXPECT_EQ(resident.count("m1"), 1U);
}

// One Client, two threads: an acquire that waits for room does not hold up
// the release (on the same Client) that makes the room.
TEST(Room, AReleaseOnTheSameClientDoesNotWaitBehindAWaitingAcquire) {
  ScratchDir models;
  write_models(models, 6);
  Broker broker(models.path(), kArgs);
  broker.start();
  Client client = Client::connect(broker.worker_socket());
  std::vector<Model> held;
  for (int i = 0; i < 5; ++i) held.push_back(client.acquire("m" + std::to_string(i)));
  auto waiter = std::async(std::launch::async, [&] {
    return client.acquire("m5", AcquireOptions{milliseconds(60000), false}).generation();
  });
  ASSERT_EQ(stats_when_waiting(broker, 1)["waiting_for_room"], 1);
  held.front().release();  // while the other thread waits in acquire
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "the waiting acquire never got the room the release made";
  EXPECT_EQ(waiter.get(), 1U);
  EXPECT_EQ(broker.admin("stats")["waiting_for_room"], 0);
  EXPECT_EQ(current_models(broker).count("m0"), 0U);
}

TEST(Room, ARepositoryWaitsForRoomAsAFileDoes) {
  ScratchDir models;
  write_models(models, 5);
  models.write("r/model-00001-of-00002.safetensors", safetensors_of("a", 6 * kMiB, 'a'));
  models.write("r/model-00002-of-00002.safetensors", safetensors_of("b", 6 * kMiB, 'b'));
  Broker broker(models.path(), kArgs);
  broker.start();
  WorkerConn holder(broker);
  const auto handles = hold(holder, 5);  // 60 of the 64 MiB
  ASSERT_EQ(handles.size(), 5U);
  WorkerConn w(broker);
  json r = w.acquire("r");
  EXPECT_EQ(code_of(r), "pool_full") << "no wait_ms: at once. " << r.dump();
  r = w.acquire("r", 300);
  EXPECT_EQ(code_of(r), "pool_full") << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("within"), std::string::npos) << r.dump();

  w.send_acquire("r", 20000);
  ASSERT_EQ(stats_when_waiting(broker, 1)["waiting_for_room"], 1);
  ASSERT_TRUE(holder.release(handles[0])["ok"].get<bool>());  // 12 MiB: room for both shards
  auto got = w.reply_within(milliseconds(10000));
  ASSERT_TRUE(got.has_value()) << "room appeared but the repository's waiter was not served";
  EXPECT_EQ(code_of(*got), "ok") << got->dump();
  EXPECT_EQ((*got)["model"], "r");
  EXPECT_EQ((*got)["files"].size(), 2U) << got->dump();
  EXPECT_EQ(broker.admin("stats")["waiting_for_room"], 0);
  EXPECT_EQ(self_check_problems(broker), json::array());
}

}  // namespace
}  // namespace modelpool::testing
