// File: tests/origin/hub_repository_test.cc
//
// hf:ORG/NAME@REV with no local cache: the revision's commit and files come
// from a hub-compatible endpoint (api/models/.../revision/REV), the files
// are chosen as a local repository's (the index's shards in its order,
// small files, never pickled weights) and fetched through resolve/COMMIT/FILE.
// One handle, one tensor namespace across the shards, the commit in the
// reply; a second acquire asks the hub nothing.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "modelpool/client.hpp"
#include "origin_servers.hpp"
#include "repo_files.hpp"

namespace modelpool::testing {
namespace {

constexpr const char* kCommit = "89abcdef0123456789abcdef0123456789abcdef";

TEST(HubRepository, ARevisionWithNoLocalCacheIsOneModelFromTheHub) {
  std::string why;
  if (!HubServer::available(&why)) GTEST_SKIP() << why;
  ScratchDir root, models, empty_cache;
  HubServer::commit_dir(root.path(), "org/sharded", kCommit);
  HubServer::set_ref(root.path(), "org/sharded", "main", kCommit);
  const std::string dir = std::string("org/sharded/") + kCommit + "/";
  // Shard 1 is LFS-sized, so its X-Linked-Etag (sha256) is checked too.
  const std::string shard1 = safetensors({{"embed.weight", 300 * 1024}, {"l0.weight", 256}}, 1);
  const std::string shard2 = safetensors({{"l1.weight", 256}, {"head.weight", 384}}, 2);
  const std::string config = R"({"model_type": "tiny"})";
  root.write(dir + "model-00001-of-00002.safetensors", shard1);
  root.write(dir + "model-00002-of-00002.safetensors", shard2);
  root.write(dir + "model.safetensors.index.json",
             R"({"metadata": {}, "weight_map": {"l1.weight": "model-00002-of-00002.safetensors",)"
             R"( "embed.weight": "model-00001-of-00002.safetensors",)"
             R"( "head.weight": "model-00002-of-00002.safetensors",)"
             R"( "l0.weight": "model-00001-of-00002.safetensors"}})");
  root.write(dir + "config.json", config);
  root.write(dir + "pytorch_model.bin", std::string(4096, 'p'));
  HubServer hub({.root = root.path()});
  const char* old = ::getenv("HF_ENDPOINT");
  ASSERT_EQ(old, nullptr) << "the test sets HF_ENDPOINT itself";
  ::setenv("HF_ENDPOINT", hub.url().c_str(), 1);
  Broker b(models.path(), {"--origin", "hf://", "--hf-cache", empty_cache.path()});
  b.start();
  ::unsetenv("HF_ENDPOINT");

  Client c = Client::connect(b.worker_socket());
  {
    Model m = c.acquire("hf:org/sharded@main");
    EXPECT_FALSE(m.cached());
    EXPECT_EQ(m.commit(), kCommit);
    std::vector<std::string> files, tensors;
    for (const FileInfo& f : m.files()) files.push_back(f.name);
    EXPECT_EQ(files, (std::vector<std::string>{"model-00002-of-00002.safetensors",
                                               "model-00001-of-00002.safetensors", "config.json",
                                               "model.safetensors.index.json"}));
    for (const Tensor& t : m.tensors()) tensors.push_back(t.name);
    EXPECT_EQ(tensors,
              (std::vector<std::string>{"l1.weight", "head.weight", "embed.weight", "l0.weight"}));
    EXPECT_EQ(as_string(m.tensor("embed.weight").data), tensor_bytes(shard1, "embed.weight"));
    EXPECT_EQ(as_string(m.tensor("head.weight").data), tensor_bytes(shard2, "head.weight"));
    EXPECT_EQ(as_string(m.file("config.json")), config);
  }
  for (const AccessEntry& e : hub.access_log()) {
    EXPECT_EQ(e.uri.find("pytorch_model.bin"), std::string::npos) << "fetched pickled weights";
  }
  const std::size_t asked = hub.access_log().size();
  Model again = c.acquire("hf:org/sharded@main");
  EXPECT_TRUE(again.cached());
  EXPECT_EQ(hub.access_log().size(), asked) << "a warm acquire asked the hub";
  // A revision the hub does not have is not_found, saying so.
  try {
    (void)c.acquire("hf:org/sharded@v2");
    ADD_FAILURE() << "acquired a revision the hub does not have";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("hf:org/sharded@v2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace modelpool::testing
