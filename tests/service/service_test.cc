// File: tests/service/service_test.cc
//
// The Service in process (in_process_broker.hpp), with a loader the test
// completes by hand: acquires of a cold model share one load and all get
// it; a failed load answers every waiter and leaves nothing behind; under
// pressure acquires wait for room in arrival order, or time out; and a
// restart adopts what the segment holds and serves it without a load.
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/store/loader.hpp"
#include "shm/protocol/hot_path.hpp"
#include "tests/service/in_process_broker.hpp"

namespace modelpool::broker {
namespace {

using nlohmann::json;
using testing::InProcessBroker;
constexpr std::uint64_t kMiB = 1 << 20;

// Holds every job until the test completes or fails it. complete() does what
// the Loader does: reserves the footprint, copies the file into its extent
// and reports the checksum.
class ManualLoader : public LoadRunner {
 public:
  void submit(LoadJob job, std::function<void(Result<LoadResult>)> done) override {
    jobs_.push_back({std::move(job), std::move(done)});
    ++submitted_;
  }
  std::size_t submitted() const { return submitted_; }
  std::size_t pending() const { return jobs_.size(); }

  void complete(std::size_t i = 0) {
    Job j = take(i);
    j.done(copy(j.job));
  }
  void fail(std::size_t i, Status why) { take(i).done(std::move(why)); }

 private:
  struct Job {
    LoadJob job;
    std::function<void(Result<LoadResult>)> done;
  };
  Job take(std::size_t i) {
    Job j = std::move(jobs_.at(i));
    jobs_.erase(jobs_.begin() + static_cast<std::ptrdiff_t>(i));
    return j;
  }
  static Result<LoadResult> copy(const LoadJob& job) {
    if (job.reserve) {
      if (Status s = job.reserve(job.dst_offset, job.footprint); !s.ok()) return s;
    }
    std::ifstream in(job.path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() != job.expected_size) return error(ErrorCode::kLoadFailed, "size changed");
    const auto n =
        ::pwrite(job.dst_fd, bytes.data(), bytes.size(), static_cast<off_t>(job.dst_offset));
    if (n != static_cast<ssize_t>(bytes.size())) return error(ErrorCode::kLoadFailed, "pwrite");
    LoadResult r;
    r.checksum = XXH3_64bits(bytes.data(), bytes.size());
    r.bytes = bytes.size();
    r.seconds = 0.001;
    return r;
  }

  std::vector<Job> jobs_;
  std::size_t submitted_ = 0;
};

Config small_pool(std::uint64_t budget) {
  Config c;
  c.policy.budget = budget;
  c.catalog_capacity = 16;
  c.adopt_grace_s = 0;
  return c;
}

class ServiceTest : public ::testing::Test {
 protected:
  explicit ServiceTest(std::uint64_t budget = 8 * kMiB)
      : broker_("svc", small_pool(budget), loader_) {}

  void acquire(InProcessBroker::Client& c, std::uint64_t id, const std::string& model,
               std::optional<std::uint64_t> wait_ms = std::nullopt) {
    broker_.dispatcher().handle(
        c.session, proto::encode_acquire_request(id, proto::AcquireRequest{model, wait_ms}));
  }
  void release(InProcessBroker::Client& c, std::uint64_t id, std::uint64_t handle) {
    broker_.dispatcher().handle(
        c.session, proto::encode_release_request(id, proto::ReleaseRequest{handle, true}));
  }
  // The one reply `c` has now (after running what is ready).
  json reply(InProcessBroker::Client& c) {
    broker_.poll();
    auto r = broker_.replies(c);
    EXPECT_EQ(r.size(), 1u) << json(r).dump();
    return r.empty() ? json() : r.front();
  }
  static std::string code(const json& r) {
    return r.contains("error") ? r["error"].value("code", "") : "";
  }

  ManualLoader loader_;  // before broker_: it outlives the Service
  InProcessBroker broker_;
};

TEST_F(ServiceTest, ConcurrentAcquiresOfAColdModelShareOneLoad) {
  broker_.write("m.bin", 3 * kMiB + 5);
  std::vector<std::unique_ptr<InProcessBroker::Client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(broker_.connect());
    acquire(*clients.back(), 10 + i, "m.bin");
  }
  broker_.poll();
  ASSERT_EQ(loader_.submitted(), 1u) << "one load for four acquires";
  for (auto& c : clients) EXPECT_TRUE(broker_.replies(*c).empty()) << "nobody is served early";
  EXPECT_EQ(broker_.service().stats(4).loads_in_flight, 1u);

  loader_.complete();
  std::vector<std::uint64_t> handles;
  std::set<std::uint64_t> offsets;
  for (int i = 0; i < 4; ++i) {
    const json r = reply(*clients[i]);
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
    EXPECT_EQ(r["id"], 10 + i);
    EXPECT_EQ(r["size"], 3 * kMiB + 5);
    offsets.insert(r["offset"].get<std::uint64_t>());
    handles.push_back(r["handle"]);
  }
  std::sort(handles.begin(), handles.end());
  EXPECT_EQ(std::unique(handles.begin(), handles.end()), handles.end()) << "a handle each";
  EXPECT_EQ(offsets.size(), 1u) << "one copy";
  const StatsReport s = broker_.service().stats(4);
  EXPECT_EQ(s.counters.loads, 1u);
  EXPECT_EQ(s.handles, 4u);
  ASSERT_EQ(s.models.size(), 1u);
  EXPECT_EQ(s.models[0].entry.refs, 4u);
  EXPECT_TRUE(broker_.service().selfcheck().consistent());
}

TEST_F(ServiceTest, AFailedLoadAnswersEveryWaiterAndLeavesNothing) {
  broker_.write("m.bin", 2 * kMiB);
  auto a = broker_.connect();
  auto b = broker_.connect();
  acquire(*a, 1, "m.bin");
  acquire(*b, 2, "m.bin");
  ASSERT_EQ(loader_.pending(), 1u);
  loader_.fail(0, error(ErrorCode::kLoadFailed, "read error on the model's disk"));
  for (auto* c : {a.get(), b.get()}) {
    const json r = reply(*c);
    EXPECT_FALSE(r.value("ok", true)) << r.dump();
    EXPECT_EQ(code(r), "load_failed");
    EXPECT_NE(r.dump().find("read error on the model's disk"), std::string::npos) << r.dump();
  }
  StatsReport s = broker_.service().stats(2);
  EXPECT_EQ(s.counters.load_failures, 1u);
  EXPECT_EQ(s.bytes_used, 0u);
  EXPECT_TRUE(s.models.empty());
  EXPECT_EQ(s.handles, 0u);
  EXPECT_TRUE(broker_.service().selfcheck().consistent());

  acquire(*a, 3, "m.bin");  // a new load, not the failed one again
  ASSERT_EQ(loader_.submitted(), 2u);
  loader_.complete();
  EXPECT_TRUE(reply(*a).value("ok", false));
}

class ServicePressureTest : public ServiceTest {
 protected:
  ServicePressureTest() : ServiceTest(4 * kMiB) {}  // room for one 3 MiB model
};

TEST_F(ServicePressureTest, AcquiresWaitForRoomInArrivalOrderAndTimeOut) {
  for (const char* m : {"a.bin", "b.bin", "c.bin"}) broker_.write(m, 3 * kMiB);
  auto holder = broker_.connect();
  acquire(*holder, 1, "a.bin");
  loader_.complete();
  const json held = reply(*holder);
  ASSERT_TRUE(held.value("ok", false)) << held.dump();

  auto now = broker_.connect();
  acquire(*now, 2, "b.bin");  // no wait_ms: pool_full at once
  EXPECT_EQ(code(reply(*now)), "pool_full");

  auto first = broker_.connect();
  auto second = broker_.connect();
  acquire(*first, 3, "b.bin", 60000);
  acquire(*second, 4, "c.bin", 60000);
  broker_.poll();
  EXPECT_EQ(loader_.submitted(), 1u) << "neither fits while a.bin is held";
  EXPECT_EQ(broker_.service().stats(4).waiting_for_room, 2u);

  release(*holder, 5, held["handle"]);
  EXPECT_TRUE(reply(*holder).value("ok", false));
  ASSERT_EQ(loader_.pending(), 1u) << "the first waiter's load starts; the second still waits";
  EXPECT_EQ(broker_.service().stats(4).waiting_for_room, 1u);
  loader_.complete();
  const json got = reply(*first);
  EXPECT_TRUE(got.value("ok", false)) << got.dump();
  EXPECT_EQ(got["model"], "b.bin");

  // The second waits behind b.bin, now held; a short wait ends in pool_full.
  auto late = broker_.connect();
  acquire(*late, 6, "c.bin", 20);
  std::vector<json> out;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (out.empty() && std::chrono::steady_clock::now() < until) {
    broker_.io().run_one_for(std::chrono::milliseconds(100));
    out = broker_.replies(*late);
  }
  ASSERT_EQ(out.size(), 1u) << "the deadline answered it";
  EXPECT_EQ(code(out[0]), "pool_full");
  EXPECT_NE(out[0].dump().find("within 20 ms"), std::string::npos) << out[0].dump();
  EXPECT_EQ(broker_.service().stats(5).waiting_for_room, 1u) << "the 60 s waiter stays";
}

TEST_F(ServiceTest, ARestartAdoptsTheResidentModelAndServesItWithoutALoad) {
  broker_.write("m.bin", kMiB + 17);
  {
    auto c = broker_.connect();
    acquire(*c, 1, "m.bin");
    loader_.complete();
    const json r = reply(*c);
    ASSERT_TRUE(r.value("ok", false)) << r.dump();
    c->session->close(nullptr);
    broker_.poll();
  }
  ASSERT_EQ(broker_.sessions(), 0u);
  ASSERT_TRUE(broker_.restart().ok());

  const StatsReport s = broker_.service().stats(0);
  ASSERT_EQ(s.models.size(), 1u) << "adopted from the catalog";
  EXPECT_EQ(s.models[0].entry.name, "m.bin");
  EXPECT_EQ(s.models[0].entry.refs, 0u);
  auto c = broker_.connect();
  acquire(*c, 2, "m.bin");
  const json r = reply(*c);
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_TRUE(r.value("cached", false));
  EXPECT_EQ(loader_.submitted(), 1u) << "no load after the restart";
  EXPECT_TRUE(broker_.service().selfcheck().consistent());
}

}  // namespace
}  // namespace modelpool::broker
