// File: tests/origin/remote_test.cc
//
// The broker serves names that are not below --models from origins: a real
// nginx on loopback, with Range requests and ETags. One download per host
// however many acquire at once, each byte once; a restarted broker served
// from the disk tier with no origin request at all; wrong bytes refused
// with nothing kept; not_found naming the origin.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "origin_servers.hpp"
#include "remote_support.hpp"

namespace modelpool::testing {
namespace {

constexpr std::uint64_t kSize = 24ULL << 20;  // four 6 MiB parts

class Remote : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!NginxServer::available(&why)) GTEST_SKIP() << why;
    model_ = origin_root_.write_random("org/m.raw", kSize, 7);
    nginx_.emplace(NginxOptions{.root = origin_root_.path()});
  }
  std::vector<std::string> flags(const std::string& disk_dir) const {
    return {"--origin",      nginx_->url(), "--disk-cache",  disk_dir,
            "--disk-budget", "1GiB",        "--origin-part", "6MiB"};
  }
  // Body bytes the origin sent for the model, its 1-byte probes left out.
  std::int64_t origin_bytes() const {
    std::int64_t sum = 0;
    for (const AccessEntry& e : nginx_->access_log()) {
      if (e.uri == "/org/m.raw" && e.range != "bytes=0-0") sum += e.body_bytes_sent;
    }
    return sum;
  }

  ScratchDir origin_root_, models_, disk_;
  std::string model_;
  std::optional<NginxServer> nginx_;
};

TEST_F(Remote, EightAcquiresAtOnceAreOneDownloadAndEachByteComesOnce) {
  auto f = flags(disk_.path() + "/tier");
  f.insert(f.end(), {"--metrics-addr", "127.0.0.1:0"});
  Broker b(models_.path(), f);
  b.start();
  const std::string want = read_file(model_);
  std::vector<std::string> got(8);
  std::vector<std::string> errors(8);
  {
    std::vector<std::thread> workers;
    for (int i = 0; i < 8; ++i) {
      workers.emplace_back([&, i] {
        try {
          Client c = Client::connect(b.worker_socket());
          Model m = c.acquire("org/m.raw");
          got[i] = as_string(m.bytes());
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : workers) t.join();
  }
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(errors[i], "") << i;
    EXPECT_TRUE(got[i] == want) << "worker " << i << " read other bytes";
  }
  EXPECT_EQ(origin_bytes(), static_cast<std::int64_t>(kSize)) << "each byte once";
  std::size_t ranged = 0;
  for (const AccessEntry& e : nginx_->access_log()) {
    if (e.range != "bytes=0-0") {
      EXPECT_EQ(e.status, 206) << e.range;
      ++ranged;
    }
  }
  EXPECT_EQ(ranged, 4u) << "four parts in flight";
  // The tier's copy is committed (fsync, rename) right after the grant.
  EXPECT_TRUE(eventually([&] { return origin_stats(b)["disk_tier"]["entries"] == 1; }));
  const json o = origin_stats(b);
  EXPECT_EQ(o["fetches"], 1) << o.dump();
  EXPECT_EQ(o["bytes"], kSize);
  EXPECT_EQ(o["disk_tier"]["entries"], 1);
  EXPECT_EQ(o["disk_tier"]["bytes"], kSize);
  const json row = row_of(b, "org/m.raw");
  EXPECT_EQ(row["state"], "ready") << row.dump();
  EXPECT_FALSE(row.contains("download")) << "no download row once loaded";
  // The tier holds one blob named by its sha256, and nothing half-written.
  const auto blobs = dir_names(disk_.path() + "/tier/blobs");
  ASSERT_EQ(blobs.size(), 1u);
  EXPECT_EQ(blobs[0].size(), 64u);
  EXPECT_EQ(read_file(disk_.path() + "/tier/blobs/" + blobs[0]), want);
  // Prometheus sees the download and the tier, and no URL.
  const std::string ready = b.ready_line();
  const auto at = ready.find("metrics port ");
  ASSERT_NE(at, std::string::npos) << ready;
  const HttpReply metrics = http_request(
      "http://127.0.0.1:" +
      ready.substr(at + 13, ready.find_first_not_of("0123456789", at + 13) - at - 13) + "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("\nmodelpool_origin_downloads_total 1\n"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("\nmodelpool_disk_tier_entries 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("# TYPE modelpool_disk_tier_hits_total counter"), std::string::npos);
  EXPECT_EQ(metrics.body.find("127.0.0.1:" + std::to_string(nginx_->port())), std::string::npos)
      << "an origin URL in the metrics";
  // A warm acquire asks nobody.
  const std::size_t requests = nginx_->access_log().size();
  Client c = Client::connect(b.worker_socket());
  EXPECT_TRUE(c.acquire("org/m.raw").cached());
  EXPECT_EQ(nginx_->access_log().size(), requests);
}

TEST_F(Remote, ARestartedBrokerIsServedFromTheDiskTierWithNoOriginRequest) {
  const std::string tier = disk_.path() + "/tier";
  {
    Broker first(models_.path(), flags(tier));
    first.start();
    Client c = Client::connect(first.worker_socket());
    EXPECT_FALSE(c.acquire("org/m.raw").cached());
  }
  const std::size_t requests = nginx_->access_log().size();
  ASSERT_GT(requests, 0u);
  nginx_->stop();  // the origin is gone: only the tier can serve it
  Broker second(models_.path(), flags(tier));
  second.start();
  Client c = Client::connect(second.worker_socket());
  Model m = c.acquire("org/m.raw");
  EXPECT_TRUE(as_string(m.bytes()) == read_file(model_));
  const json o = origin_stats(second);
  EXPECT_EQ(o["requests"], 0) << o.dump();
  EXPECT_EQ(o["disk_hits"], 1);
  EXPECT_EQ(o["disk_tier"]["hits"], 1);
  EXPECT_EQ(o["disk_tier"]["hit_rate"], 1.0);
  // modelpoolctl shows the tier.
  const auto [code, out] = run_command({binary_path("clientlib/modelpoolctl"), "--run-dir",
                                        second.run_dir(), "--pool", second.pool(), "stats"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("Disk tier: 24.0 MiB of 1.0 GiB, 1 entries"), std::string::npos) << out;
  EXPECT_NE(out.find("Hit rate: 100% (1 of 1)"), std::string::npos) << out;
  EXPECT_NE(out.find("Origins: " + nginx_->url()), std::string::npos) << out;
}

TEST_F(Remote, BytesThatDoNotMatchTheManifestAreRefusedAndNothingIsKept) {
  ScratchDir etc;
  const std::string manifest =
      etc.write("manifest.json",
                R"({"m": {"path": "org/m.raw", "sha256": ")" + std::string(64, 'a') + R"("}})");
  auto f = flags(disk_.path() + "/tier");
  f.insert(f.end(), {"--manifest", manifest});
  Broker b(models_.path(), f);
  b.start();
  Client c = Client::connect(b.worker_socket());
  try {
    (void)c.acquire("m");
    ADD_FAILURE() << "acquired bytes whose sha256 is wrong";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLoadFailed);
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(nginx_->url()), std::string::npos) << e.what();
  }
  EXPECT_EQ(b.admin("stats")["bytes_used"], 0);
  EXPECT_EQ(origin_stats(b)["integrity_failures"], 1);
  EXPECT_EQ(dir_names(disk_.path() + "/tier/blobs"), std::vector<std::string>{});
}

TEST_F(Remote, ADigestTheOriginPublishesIsChecked) {
  // An origin that says the object's sha256 is something else.
  nginx_.reset();
  nginx_.emplace(NginxOptions{.root = origin_root_.path(),
                              .add_headers = {"x-amz-meta-sha256 " + std::string(64, 'b')}});
  Broker b(models_.path(), flags(disk_.path() + "/tier"));
  b.start();
  Client c = Client::connect(b.worker_socket());
  try {
    (void)c.acquire("org/m.raw");
    ADD_FAILURE() << "acquired bytes whose sha256 is not the origin's";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLoadFailed);
    EXPECT_NE(std::string(e.what()).find("(the origin's)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(dir_names(disk_.path() + "/tier/blobs"), std::vector<std::string>{});
}

TEST_F(Remote, ANameNoOriginHasIsNotFoundAndNamesTheOrigin) {
  Broker b(models_.path(), flags(disk_.path() + "/tier"));
  b.start();
  Client c = Client::connect(b.worker_socket());
  try {
    (void)c.acquire("org/absent.raw");
    ADD_FAILURE() << "acquired a model no origin has";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find(nginx_->url() + "/org/absent.raw"), std::string::npos)
        << e.what();
  }
  // A local file still comes first, and an invalid name is still invalid.
  models_.write_random("org/local.raw", 4096, 3);
  EXPECT_FALSE(c.acquire("org/local.raw").cached());
  EXPECT_EQ(nginx_->origin_body_bytes("/org/local.raw"), 0);
  try {
    (void)c.acquire("../escape.raw");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidName);
  }
}

TEST_F(Remote, AManifestNamesTheOriginOfAModel) {
  // No --origin: the manifest alone says where "m" comes from.
  ScratchDir etc;
  const std::string manifest = etc.write(
      "manifest.json", R"({"m": {"path": "org/m.raw", "origin": ")" + nginx_->url() + R"("}})");
  Broker b(models_.path(), {"--manifest", manifest});
  b.start();
  Client c = Client::connect(b.worker_socket());
  EXPECT_TRUE(as_string(c.acquire("m").bytes()) == read_file(model_));
  // Other names have no origin.
  try {
    (void)c.acquire("org/m.raw");
    ADD_FAILURE() << "a name the manifest does not list came from its origin";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  // An origin that is no URL is refused with the manifest.
  const std::string bad =
      etc.write("bad.json", R"({"m": {"path": "org/m.raw", "origin": "ftp://x/y"}})");
  Broker refused(models_.path(), {"--manifest", bad});
  refused.capture_stderr(etc.path() + "/refused.log");
  EXPECT_THROW(refused.start(), std::exception);
  EXPECT_NE(refused.stderr_text().find("ftp://x/y"), std::string::npos) << refused.stderr_text();
}

}  // namespace
}  // namespace modelpool::testing
