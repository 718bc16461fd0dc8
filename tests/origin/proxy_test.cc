// File: tests/origin/proxy_test.cc
//
// Beyond one host, with no cluster protocol of our own: three brokers (three
// pools, three disk tiers, as on three nodes) pull the same model through
// one caching proxy (nginx with proxy_cache and the slice module) in front
// of the origin. The origin's access log shows each byte served once.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

#include "origin_servers.hpp"
#include "remote_support.hpp"

namespace modelpool::testing {
namespace {

TEST(CachingProxy, ThreeBrokersThroughOneProxyCostTheOriginEachByteOnce) {
  std::string why;
  if (!NginxServer::available(&why)) GTEST_SKIP() << why;
  constexpr std::uint64_t kSize = 32ULL << 20;
  ScratchDir origin_root, models, tiers;
  const std::string model = origin_root.write_random("org/big.raw", kSize, 5);
  NginxServer origin(NginxOptions{.root = origin_root.path()});
  NginxServer proxy(NginxOptions{.upstream = origin.url()});

  std::vector<std::unique_ptr<Broker>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(std::make_unique<Broker>(
        models.path(), std::vector<std::string>{"--origin", proxy.url(), "--disk-cache",
                                                tiers.path() + "/node" + std::to_string(i),
                                                "--disk-budget", "1GiB", "--origin-part", "8MiB"}));
    nodes.back()->start();
  }
  // All three at once, as nodes that start a deployment together.
  std::vector<std::future<std::string>> got;
  for (const auto& b : nodes) {
    got.push_back(std::async(std::launch::async, [socket = b->worker_socket()] {
      try {
        Client c = Client::connect(socket);
        return as_string(c.acquire("org/big.raw").bytes());
      } catch (const std::exception& e) {
        return std::string("error: ") + e.what();
      }
    }));
  }
  const std::string want = read_file(model);
  for (auto& g : got) EXPECT_TRUE(g.get() == want) << "a node read other bytes";

  std::int64_t from_origin = 0;
  for (const AccessEntry& e : origin.access_log()) {
    if (e.uri == "/org/big.raw") from_origin += e.body_bytes_sent;
  }
  EXPECT_EQ(from_origin, static_cast<std::int64_t>(kSize)) << "the origin served some bytes twice";
  // Each node downloaded it whole (through the proxy) and keeps it on disk.
  for (const auto& b : nodes) {
    EXPECT_TRUE(eventually([&] { return origin_stats(*b)["disk_tier"]["entries"] == 1; }));
    const json o = origin_stats(*b);
    EXPECT_EQ(o["fetches"], 1) << o.dump();
    EXPECT_EQ(o["disk_tier"]["bytes"], kSize) << o.dump();
  }
}

}  // namespace
}  // namespace modelpool::testing
