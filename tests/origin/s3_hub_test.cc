// File: tests/origin/s3_hub_test.cc
//
// The two origins that speak more than plain HTTP: an S3-compatible store
// (s3rver, with SigV4 verified in front of it) reached with AWS Signature
// V4 from the AWS_* environment, and a Hugging Face–compatible hub reached
// through hf:// (HF_ENDPOINT, HF_TOKEN), whose published sha256
// (X-Linked-Etag) the bytes are checked against. Credentials never reach
// the broker's log.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "origin_servers.hpp"
#include "remote_support.hpp"

namespace modelpool::testing {
namespace {

TEST(S3Origin, SignedWithSigV4FromTheEnvironmentAndRefusedWithAWrongSecret) {
  std::string why;
  if (!S3Server::available(&why)) GTEST_SKIP() << why;
  ScratchDir work, models;
  const std::string local = work.write_random("m.raw", 6 << 20, 21);
  S3Server s3;
  s3.put("models", "team/org/m.raw", local);
  ScopedEnv env;
  env.set("AWS_ENDPOINT_URL", s3.endpoint());
  env.set("AWS_REGION", S3Server::kRegion);
  env.set("AWS_ACCESS_KEY_ID", S3Server::kAccessKey);
  env.set("AWS_SECRET_ACCESS_KEY", S3Server::kSecretKey);
  {
    Broker b(models.path(), {"--origin", "s3://models/team", "--origin-part", "2MiB"});
    b.capture_stderr(work.path() + "/good.log");
    b.start();
    EXPECT_TRUE(acquire_or_error(b, "org/m.raw") == read_file(local));
    EXPECT_EQ(origin_stats(b)["fetches"], 1);
    std::size_t ranged = 0;
    for (const AccessEntry& e : s3.access_log()) {
      if (e.method == "GET" && e.status == 206) ++ranged;
    }
    EXPECT_GE(ranged, 3u) << "the probe and parts are ranged GETs";
  }
  const std::string secret = "not-the-secret-0123456789";
  env.set("AWS_SECRET_ACCESS_KEY", secret);
  Broker b(models.path(), {"--origin", "s3://models/team", "--origin-retries", "0"});
  b.capture_stderr(work.path() + "/bad.log");
  b.start();
  const std::string got = acquire_or_error(b, "org/m.raw");
  EXPECT_EQ(got.rfind("error load_failed: ", 0), 0u) << got.substr(0, 200);
  EXPECT_NE(got.find("HTTP 403"), std::string::npos) << got;
  EXPECT_NE(got.find(s3.endpoint() + "/models/team/org/m.raw"), std::string::npos) << got;
  const std::string log = b.stderr_text() + read_file(work.path() + "/good.log");
  EXPECT_EQ(log.find(secret), std::string::npos) << "a secret in the log";
  EXPECT_EQ(log.find(S3Server::kSecretKey + std::string(":")), std::string::npos);
}

class HubOrigin : public ::testing::Test {
 protected:
  static constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
  void SetUp() override {
    std::string why;
    if (!HubServer::available(&why)) GTEST_SKIP() << why;
    HubServer::commit_dir(root_.path(), "org/tiny", kCommit);
    const std::string dir = std::string("org/tiny/") + kCommit;
    weights_ = read_file(work_.write_random("w", 3 << 20, 31));  // LFS-sized: X-Linked-Etag
    config_ = R"({"hidden_size": 8})";
    root_.write(dir + "/model.raw", weights_);
    root_.write(dir + "/config.json", config_);
    HubServer::set_ref(root_.path(), "org/tiny", "main", kCommit);
  }
  std::vector<std::string> flags() const {
    return {"--origin", "hf://", "--hf-cache", empty_cache_.path()};
  }

  ScratchDir root_, work_, models_, empty_cache_;
  std::string weights_, config_;
};

TEST_F(HubOrigin, AFileOfARevisionComesFromTheHubWithItsToken) {
  HubServer hub({.root = root_.path(), .token = "hf_test_token", .lfs_redirect = true});
  ScopedEnv env;
  env.set("HF_ENDPOINT", hub.url());
  env.set("HF_TOKEN", "hf_test_token");
  Broker b(models_.path(), flags());
  b.capture_stderr(work_.path() + "/broker.log");
  b.start();
  EXPECT_TRUE(acquire_or_error(b, "hf:org/tiny@main/model.raw") == weights_);
  EXPECT_EQ(acquire_or_error(b, std::string("hf:org/tiny@") + kCommit + "/config.json"), config_);
  for (const AccessEntry& e : hub.access_log()) EXPECT_NE(e.status, 401) << e.uri;
  EXPECT_EQ(b.stderr_text().find("hf_test_token"), std::string::npos) << "a token in the log";
  // A revision the hub does not have is not_found, naming what was asked.
  const std::string absent = acquire_or_error(b, "hf:org/tiny@v9/model.raw");
  EXPECT_EQ(absent.rfind("error not_found: ", 0), 0u) << absent;
  EXPECT_NE(absent.find("/org/tiny/resolve/v9/model.raw"), std::string::npos) << absent;
}

TEST_F(HubOrigin, WithoutTheTokenTheHubRefusesAndTheErrorSaysSo) {
  HubServer hub({.root = root_.path(), .token = "hf_test_token"});
  ScopedEnv env;
  env.set("HF_ENDPOINT", hub.url());
  env.unset("HF_TOKEN");
  Broker b(models_.path(), flags());
  b.start();
  const std::string got = acquire_or_error(b, "hf:org/tiny@main/model.raw");
  EXPECT_EQ(got.rfind("error load_failed: ", 0), 0u) << got;
  EXPECT_NE(got.find("HTTP 401"), std::string::npos) << got;
}

}  // namespace
}  // namespace modelpool::testing
