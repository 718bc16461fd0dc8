// File: tests/origin/remote_fault_test.cc
//
// Origins fail the way they do in the field, against a real nginx: 503s
// that stop, an origin too slow to be worth waiting for, an origin that
// dies mid-download and comes back, a broker SIGKILLed mid-download, a
// disk tier on a full filesystem. Each test waits on what the broker or
// the origin reports (the broker's `list`, nginx's access log), bounded in
// count and time.
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <string>
#include <vector>

#include "origin_servers.hpp"
#include "remote_support.hpp"
#include "tests/support/scratch_mount.hpp"

namespace modelpool::testing {
namespace {

class RemoteFault : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!NginxServer::available(&why)) GTEST_SKIP() << why;
  }
  void serve(std::uint64_t size, std::uint64_t limit_rate = 0) {
    model_ = origin_root_.write_random("org/m.raw", size, 11);
    nginx_.emplace(NginxOptions{.root = origin_root_.path(), .limit_rate = limit_rate});
  }
  std::vector<std::string> flags(const std::string& tier, std::vector<std::string> more = {}) {
    std::vector<std::string> f = {"--origin",      nginx_->url(), "--disk-cache",  tier,
                                  "--disk-budget", "1GiB",        "--origin-part", "4MiB"};
    f.insert(f.end(), more.begin(), more.end());
    return f;
  }
  // An acquire on its own thread: the bytes it read, or the error.
  std::future<std::string> acquire_async(const Broker& b, const std::string& name) {
    return std::async(std::launch::async, [socket = b.worker_socket(), name] {
      try {
        Client c = Client::connect(socket);
        Model m = c.acquire(name);
        return as_string(m.bytes());
      } catch (const std::exception& e) {
        return std::string("error: ") + e.what();
      }
    });
  }

  ScratchDir origin_root_, models_, disk_;
  std::string model_;
  std::optional<NginxServer> nginx_;
};

TEST_F(RemoteFault, ServiceUnavailableIsRetriedUntilTheOriginHeals) {
  serve(4 << 20);
  nginx_->set_failing(true);
  Broker b(models_.path(), flags(disk_.path() + "/tier", {"--origin-retries", "8"}));
  b.start();
  auto got = acquire_async(b, "org/m.raw");
  ASSERT_TRUE(nginx_->wait_for_log([](const AccessLog& log) {
    return std::count_if(log.begin(), log.end(),
                         [](const AccessEntry& e) { return e.status == 503; }) >= 2;
  })) << "the broker did not retry the 503";
  nginx_->set_failing(false);
  EXPECT_TRUE(got.get() == read_file(model_));
  const json o = origin_stats(b);
  EXPECT_GE(o["retries"].get<int>(), 2) << o.dump();
  EXPECT_EQ(o["errors"], 0);
}

TEST_F(RemoteFault, ServiceUnavailableForeverIsLoadFailedNamingTheOriginAndTheStatus) {
  serve(1 << 20);
  nginx_->set_failing(true);
  Broker b(models_.path(), flags(disk_.path() + "/tier", {"--origin-retries", "1"}));
  b.start();
  const std::string got = acquire_async(b, "org/m.raw").get();
  EXPECT_NE(got.find("error: "), std::string::npos) << got.substr(0, 80);
  EXPECT_NE(got.find(nginx_->url() + "/org/m.raw"), std::string::npos) << got;
  EXPECT_NE(got.find("HTTP 503"), std::string::npos) << got;
  EXPECT_NE(got.find("2 attempts"), std::string::npos) << got;
  EXPECT_EQ(origin_stats(b)["errors"], 1);
}

TEST_F(RemoteFault, ASlowOriginTimesOutAndTheErrorNamesIt) {
  serve(1 << 20, /*limit_rate=*/256);  // 256 B/s: below the 1 KiB/s floor
  Broker b(models_.path(),
           flags(disk_.path() + "/tier", {"--origin-timeout", "1", "--origin-retries", "0"}));
  b.start();
  const std::string got = acquire_async(b, "org/m.raw").get();
  EXPECT_NE(got.find("timed out"), std::string::npos) << got;
  EXPECT_NE(got.find(nginx_->url()), std::string::npos) << got;
  EXPECT_EQ(b.admin("stats")["bytes_used"], 0);
  EXPECT_EQ(dir_names(disk_.path() + "/tier/blobs"), std::vector<std::string>{});
}

TEST_F(RemoteFault, TheOriginDiesMidDownloadComesBackAndTheDownloadResumes) {
  constexpr std::uint64_t kSize = 16ULL << 20;
  serve(kSize, /*limit_rate=*/2 << 20);  // 4 parts x 2 MiB/s: about 2 s
  Broker b(models_.path(), flags(disk_.path() + "/tier", {"--origin-retries", "6"}));
  b.start();
  auto got = acquire_async(b, "org/m.raw");
  ASSERT_TRUE(eventually([&] { return download_bytes(b, "org/m.raw") > (1 << 20); }))
      << "the download never got going";
  // modelpoolctl list shows how far it is.
  const auto [code, out] = run_command({binary_path("clientlib/modelpoolctl"), "--run-dir",
                                        b.run_dir(), "--pool", b.pool(), "list"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("loading "), std::string::npos) << out;
  EXPECT_NE(out.find("/s ETA "), std::string::npos) << out;
  nginx_->kill();
  nginx_->start();
  EXPECT_TRUE(got.get() == read_file(model_)) << "the resumed download's bytes differ";
  // Some part picked up where it stopped instead of starting over: a
  // range that starts at none of the parts' first bytes.
  std::set<std::string> starts;
  for (std::uint64_t part = 0; part < 4; ++part) starts.insert(std::to_string(part * kSize / 4));
  bool resumed = false;
  for (const AccessEntry& e : nginx_->access_log()) {
    if (e.range.rfind("bytes=", 0) != 0 || e.range == "bytes=0-0") continue;
    resumed = resumed || starts.count(e.range.substr(6, e.range.find('-') - 6)) == 0;
  }
  EXPECT_TRUE(resumed) << "no request resumed a part";
  EXPECT_GE(origin_stats(b)["retries"].get<int>(), 1);
}

TEST_F(RemoteFault, ABrokerKilledMidDownloadLeavesNothingHalfDoneAndStartsCleanly) {
  constexpr std::uint64_t kSize = 16ULL << 20;
  serve(kSize, /*limit_rate=*/1 << 20);
  const std::string tier = disk_.path() + "/tier";
  Broker b(models_.path(), flags(tier));
  b.start();
  auto got = acquire_async(b, "org/m.raw");
  ASSERT_TRUE(eventually([&] { return download_bytes(b, "org/m.raw") > (1 << 20); }));
  b.kill9();
  // What the broker was writing is an .incomplete, never a blob.
  for (const std::string& n : dir_names(tier + "/blobs")) {
    EXPECT_NE(n.find(".incomplete"), std::string::npos) << n;
  }
  b.start();  // adopts the segment the killed broker left
  // The worker's acquire failed with the broker, or its client got it from
  // the new one: never other bytes.
  const std::string first = got.get();
  EXPECT_TRUE(first.rfind("error: ", 0) == 0 || first == read_file(model_)) << first.substr(0, 80);
  for (const std::string& n : dir_names(tier + "/blobs")) {
    EXPECT_EQ(n.find(".incomplete"), std::string::npos) << "left over: " << n;
  }
  EXPECT_TRUE(acquire_async(b, "org/m.raw").get() == read_file(model_));
  EXPECT_TRUE(eventually([&] { return dir_names(tier + "/blobs").size() == 1; }))
      << "the tier's copy was not committed";
}

TEST_F(RemoteFault, AFullDiskTierDropsItsCopyAndThePoolStillGetsTheModel) {
  std::string why;
  auto small = ScratchMount::tmpfs(8ULL << 20, /*huge=*/false, &why);
  if (!small) GTEST_SKIP() << "a small tmpfs for the tier: " << why;
  serve(16ULL << 20);  // larger than the filesystem, within --disk-budget
  Broker b(models_.path(), flags(small->path() + "/tier"));
  b.start();
  EXPECT_TRUE(acquire_async(b, "org/m.raw").get() == read_file(model_));
  const json t = origin_stats(b)["disk_tier"];
  EXPECT_EQ(t["write_errors"], 1) << t.dump();
  EXPECT_EQ(t["entries"], 0);
  EXPECT_EQ(dir_names(small->path() + "/tier/blobs"), std::vector<std::string>{})
      << "a half-kept copy";
}

}  // namespace
}  // namespace modelpool::testing
