// File: tests/origin/servers_test.cc
//
// Proves each test server in origin_servers.hpp behaves as the origin tests
// rely on: nginx's Range/ETag, its 503 fail switch, kill and restart, and a
// caching proxy that fetches each byte of the origin once; s3rver behind a
// SigV4 verifier; the hub endpoint's routes, headers and errors.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "origin_servers.hpp"

namespace modelpool::testing {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

std::string sha256_hex(const std::string& path) {
  const auto [status, out] = run_command({find_program("sha256sum"), path});
  return status == 0 ? out.substr(0, 64) : "";
}

#define SKIP_UNLESS_AVAILABLE(Server)                                  \
  do {                                                                 \
    std::string why;                                                   \
    if (!Server::available(&why)) GTEST_SKIP() << #Server ": " << why; \
  } while (0)

TEST(ServersNginx, OriginServesRangeWithEtagAndLogsIt) {
  SKIP_UNLESS_AVAILABLE(NginxServer);
  ScratchDir root;
  const std::string bytes = read_file(root.write_random("model.bin", kMiB));
  NginxServer origin({.root = root.path()});

  const HttpReply r = http_request(origin.url() + "/model.bin", "GET", {"Range: bytes=100-199"});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, bytes.substr(100, 100));
  EXPECT_EQ(r.header("content-range"), "bytes 100-199/1048576");
  EXPECT_FALSE(r.header("etag").empty());

  ASSERT_TRUE(origin.wait_for_log([](const AccessLog& log) { return !log.empty(); }));
  const AccessEntry e = origin.access_log().at(0);
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.uri, "/model.bin");
  EXPECT_EQ(e.status, 206);
  EXPECT_EQ(e.body_bytes_sent, 100);
  EXPECT_GT(e.bytes_sent, 100);
  EXPECT_EQ(e.range, "bytes=100-199");
  EXPECT_EQ(e.cache_status, "");
}

TEST(ServersNginx, FailFileGives503UntilRemoved) {
  SKIP_UNLESS_AVAILABLE(NginxServer);
  ScratchDir root;
  root.write("a.bin", "hello");
  NginxServer origin({.root = root.path()});
  origin.set_failing(true);
  EXPECT_EQ(http_request(origin.url() + "/a.bin").status, 503);
  origin.set_failing(false);
  const HttpReply ok = http_request(origin.url() + "/a.bin");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "hello");
}

TEST(ServersNginx, KillTakesWorkersDownAndStartComesBackOnTheSamePort) {
  SKIP_UNLESS_AVAILABLE(NginxServer);
  ScratchDir root;
  root.write("a.bin", "hello");
  NginxServer origin({.root = root.path()});
  const std::string url = origin.url();
  ASSERT_EQ(http_request(url + "/a.bin").status, 200);
  origin.kill();
  // A surviving worker would still hold the listening socket and answer.
  EXPECT_THROW(http_request(url + "/a.bin"), std::runtime_error);
  origin.start();
  EXPECT_EQ(origin.url(), url);
  EXPECT_EQ(http_request(url + "/a.bin").body, "hello");
  origin.stop();
  EXPECT_THROW(http_request(url + "/a.bin"), std::runtime_error);
}

// Three concurrent ranged downloads through the proxy; the origin must send
// each byte of the 8 MiB file exactly once.
void expect_each_byte_once(std::uint64_t slice_bytes) {
  ScratchDir root;
  const std::uint64_t size = 8 * kMiB;
  const std::string bytes = read_file(root.write_random("big.bin", size));
  NginxServer origin({.root = root.path(), .limit_rate = 32 * kMiB});
  NginxServer proxy({.upstream = origin.url(), .slice_bytes = slice_bytes});

  const std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges = {
      {0, 4 * kMiB - 1}, {2 * kMiB, size - 1}, {0, size - 1}};
  std::vector<HttpReply> replies(ranges.size());
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    clients.emplace_back([&, i] {
      const std::string range = "Range: bytes=" + std::to_string(ranges[i].first) + "-" +
                                std::to_string(ranges[i].second);
      replies[i] = http_request(proxy.url() + "/big.bin", "GET", {range});
    });
  }
  for (auto& t : clients) t.join();
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    EXPECT_EQ(replies[i].status, 206) << i;
    EXPECT_TRUE(replies[i].body ==
                bytes.substr(ranges[i].first, ranges[i].second - ranges[i].first + 1))
        << i;
  }
  const auto covered = [&](const AccessLog& log) {
    return body_bytes_for(log, "/big.bin") >= static_cast<std::int64_t>(size);
  };
  ASSERT_TRUE(origin.wait_for_log(covered)) << origin.origin_body_bytes("/big.bin");
  EXPECT_EQ(origin.origin_body_bytes("/big.bin"), static_cast<std::int64_t>(size));
  ASSERT_TRUE(proxy.wait_for_log([](const AccessLog& log) { return log.size() == 3; }));
}

TEST(ServersNginx, ProxyCacheWithSlicesFetchesEachOriginByteOnce) {
  SKIP_UNLESS_AVAILABLE(NginxServer);
  expect_each_byte_once(kMiB);
}

TEST(ServersNginx, ProxyCacheOfWholeFilesFetchesEachOriginByteOnce) {
  SKIP_UNLESS_AVAILABLE(NginxServer);
  expect_each_byte_once(0);
}

TEST(ServersS3, SignedGetReturnsTheObjectAndAWrongSecretGets403) {
  SKIP_UNLESS_AVAILABLE(S3Server);
  ScratchDir files;
  const std::string local = files.write_random("w.bin", 300000);
  S3Server s3;
  s3.put("models", "org/model/w.bin", local);
  const std::string url = s3.endpoint() + "/models/org/model/w.bin";
  const std::string got = files.path() + "/got.bin";

  auto good = s3.curl_sigv4_args();
  good.insert(good.end(), {"-o", got, "-w", "%{http_code}", url});
  EXPECT_EQ(run_command(good).second, "200");
  EXPECT_TRUE(read_file(got) == read_file(local));

  auto ranged = s3.curl_sigv4_args();
  ranged.insert(ranged.end(), {"-o", got, "-w", "%{http_code}", "-r", "10-19", url});
  EXPECT_EQ(run_command(ranged).second, "206");
  EXPECT_EQ(read_file(got), read_file(local).substr(10, 10));

  auto bad = s3.curl_sigv4_args("not-the-secret");
  bad.insert(bad.end(), {"-w", "\n%{http_code}", url});
  const std::string reply = run_command(bad).second;
  EXPECT_NE(reply.find("<Code>SignatureDoesNotMatch</Code>"), std::string::npos) << reply;
  EXPECT_EQ(reply.substr(reply.size() - 3), "403");

  const HttpReply anonymous = http_request(url);
  EXPECT_EQ(anonymous.status, 403);
  EXPECT_NE(anonymous.body.find("<Code>AccessDenied</Code>"), std::string::npos) << anonymous.body;
  EXPECT_TRUE(s3.wait_for_log([](const AccessLog& log) { return log.size() == 5; }))
      << s3.access_count();
}

class ServersHub : public ::testing::Test {
 protected:
  static constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
  void SetUp() override {
    std::string why;
    if (!HubServer::available(&why)) GTEST_SKIP() << why;
    const std::string dir = HubServer::commit_dir(root_.path(), "org/model", kCommit);
    big_ = read_file(
        root_.write_random("org/model/" + std::string(kCommit) + "/model.bin", 2 * kMiB + 5));
    big_sha_ = sha256_hex(dir + "/model.bin");
    root_.write("org/model/" + std::string(kCommit) + "/sub/config.json", "{}\n");
    HubServer::set_ref(root_.path(), "org/model", "main", kCommit);
  }
  ScratchDir root_;
  std::string big_, big_sha_;
};

TEST_F(ServersHub, ResolveByBranchSendsBytesCommitAndLinkedEtag) {
  HubServer hub({.root = root_.path()});
  const HttpReply r = http_request(hub.url() + "/org/model/resolve/main/model.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == big_);
  EXPECT_EQ(r.header("x-repo-commit"), kCommit);
  EXPECT_EQ(r.header("x-linked-etag"), "\"" + big_sha_ + "\"");
  EXPECT_EQ(r.header("x-linked-size"), std::to_string(big_.size()));
  EXPECT_FALSE(r.header("etag").empty());

  const HttpReply part = http_request(hub.url() + "/org/model/resolve/" + kCommit + "/model.bin",
                                      "GET", {"Range: bytes=10-"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.header("content-range"),
            "bytes 10-" + std::to_string(big_.size() - 1) + "/" + std::to_string(big_.size()));
  EXPECT_TRUE(part.body == big_.substr(10));

  const HttpReply small =
      http_request(hub.url() + "/org/model/resolve/main/sub/config.json", "HEAD");
  EXPECT_EQ(small.header("content-length"), "3");
  EXPECT_EQ(small.header("x-linked-etag"), "");
  EXPECT_TRUE(hub.wait_for_log([](const AccessLog& log) { return log.size() == 3; }))
      << hub.access_log().size();
}

TEST_F(ServersHub, ApiListsTheRevisionsFiles) {
  HubServer hub({.root = root_.path()});
  const HttpReply r = http_request(hub.url() + "/api/models/org/model/revision/main");
  ASSERT_EQ(r.status, 200);
  const json j = json::parse(r.body);
  EXPECT_EQ(j["id"], "org/model");
  EXPECT_EQ(j["sha"], kCommit);
  EXPECT_EQ(j["siblings"], json::parse(R"([{"rfilename":"model.bin"},
                                           {"rfilename":"sub/config.json"}])"));
}

TEST_F(ServersHub, MissingThingsAre404WithErrorCodes) {
  HubServer hub({.root = root_.path()});
  const auto code = [&](const std::string& path) {
    const HttpReply r = http_request(hub.url() + path);
    return std::to_string(r.status) + " " + r.header("x-error-code");
  };
  EXPECT_EQ(code("/org/model/resolve/v9/model.bin"), "404 RevisionNotFound");
  EXPECT_EQ(code("/org/model/resolve/main/nope.bin"), "404 EntryNotFound");
  EXPECT_EQ(code("/org/other/resolve/main/model.bin"), "404 RepoNotFound");
  EXPECT_EQ(code("/api/models/org/model/revision/v9"), "404 RevisionNotFound");
}

TEST_F(ServersHub, TokenAndLfsRedirect) {
  HubServer hub({.root = root_.path(), .token = "secret", .lfs_redirect = true});
  const std::string url = hub.url() + "/org/model/resolve/main/model.bin";
  EXPECT_EQ(http_request(url).status, 401);
  const HttpReply r = http_request(url, "GET", {"Authorization: Bearer secret"});
  ASSERT_EQ(r.status, 302);
  EXPECT_EQ(r.header("x-linked-etag"), "\"" + big_sha_ + "\"");
  EXPECT_EQ(r.header("x-repo-commit"), kCommit);
  const HttpReply cdn = http_request(r.header("location"));  // the CDN needs no token
  EXPECT_EQ(cdn.status, 200);
  EXPECT_TRUE(cdn.body == big_);
}

}  // namespace
}  // namespace modelpool::testing
