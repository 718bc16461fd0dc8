// File: tests/integration/repository_test.cc
//
// Models of several files, served as one by the real broker: a sharded
// safetensors repository below --models (index order, small files, no
// pickles), a Hugging Face cache laid out as huggingface_hub writes it (blobs
// named by sha256, snapshot symlinks, refs/main) with two revisions sharing a
// shard, and a GGUF split set. Tensors are read through the C++ client and
// compared with the bytes of the files; the pool's accounting comes from the
// admin socket.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "broker_fixture.hpp"
#include "modelpool/client.hpp"
#include "repo_files.hpp"
#include "tests/format/gguf_builder.hpp"

namespace modelpool::testing {
namespace {

namespace fs = std::filesystem;

class Repository : public ::testing::Test {
 protected:
  void SetUp() override {
    shard1_ = safetensors({{"embed.weight", 512}, {"l0.weight", 256}}, 1);
    shard2_ = safetensors({{"l1.weight", 256}, {"head.weight", 384}}, 2);
    const std::string repo = models_.path() + "/org/m/";
    put(repo + "model-00001-of-00002.safetensors", shard1_);
    put(repo + "model-00002-of-00002.safetensors", shard2_);
    // The index lists shard 2's tensors first: the model's order is the index's.
    put(repo + "model.safetensors.index.json",
        R"({"metadata": {"total_size": 0}, "weight_map": {)"
        R"("l1.weight": "model-00002-of-00002.safetensors",)"
        R"("head.weight": "model-00002-of-00002.safetensors",)"
        R"("embed.weight": "model-00001-of-00002.safetensors",)"
        R"("l0.weight": "model-00001-of-00002.safetensors"}})");
    config_ = R"({"model_type": "test", "hidden_size": 16})";
    put(repo + "config.json", config_);
    put(repo + "tokenizer.json", R"({"version": "1.0"})");
    put(repo + "pytorch_model.bin", "pickled; never loaded");
  }
  ScratchDir models_;
  std::string shard1_, shard2_, config_;
};

TEST_F(Repository, IsOneModelWithTensorsAcrossShardsAndItsSmallFiles) {
  Broker b(models_.path());
  b.start();
  auto c = Client::connect(b.worker_socket());
  std::vector<std::string> names;
  {
    Model m = c.acquire("org/m");
    EXPECT_FALSE(m.cached());
    std::vector<std::string> files;
    for (const FileInfo& f : m.files()) files.push_back(f.name + (f.weights ? "*" : ""));
    EXPECT_EQ(files, (std::vector<std::string>{"model-00002-of-00002.safetensors*",
                                               "model-00001-of-00002.safetensors*", "config.json",
                                               "model.safetensors.index.json", "tokenizer.json"}));
    for (const Tensor& t : m.tensors()) names.push_back(t.name);
    for (const char* name : {"l1.weight", "head.weight"}) {
      EXPECT_EQ(as_string(m.tensor(name).data), tensor_bytes(shard2_, name)) << name;
    }
    for (const char* name : {"embed.weight", "l0.weight"}) {
      EXPECT_EQ(as_string(m.tensor(name).data), tensor_bytes(shard1_, name)) << name;
    }
    EXPECT_EQ(as_string(m.file("config.json")), config_);
    EXPECT_EQ(as_string(m.file("model-00001-of-00002.safetensors")), shard1_);
    EXPECT_THROW((void)m.file("pytorch_model.bin"), Error);

    const json row = row_of(b, "org/m");
    ASSERT_TRUE(row.is_object()) << b.admin("list").dump();
    EXPECT_EQ(row["file_count"], 5);
    EXPECT_EQ(row["refs"], 1);
    EXPECT_EQ(row["format"], "repository");
    // modelpoolctl shows it as one row with its file count, not its files.
    const auto [code, out] = run_command({binary_path("clientlib/modelpoolctl"), "--run-dir",
                                          b.run_dir(), "--pool", b.pool(), "list"});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("5 files"), std::string::npos) << out;
    EXPECT_EQ(out.find("model-00001"), std::string::npos) << out;
    // One handle holds it, and it cannot be evicted while held.
    EXPECT_EQ(b.admin("evict", {{"model", "org/m"}})["error"]["code"], "forbidden");

    Model again = c.acquire("org/m");
    EXPECT_TRUE(again.cached());
    EXPECT_EQ(row_of(b, "org/m")["refs"], 2);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"l1.weight", "head.weight", "embed.weight", "l0.weight"}));
  EXPECT_EQ(row_of(b, "org/m")["refs"], 0);
  // Pinned as a unit, then evicted as a unit once unpinned.
  EXPECT_EQ(b.admin("pin", {{"model", "org/m"}})["ok"], true);
  EXPECT_EQ(row_of(b, "org/m")["pinned"], true);
  EXPECT_EQ(b.admin("evict", {{"model", "org/m"}})["error"]["code"], "forbidden");
  EXPECT_EQ(b.admin("unpin", {{"model", "org/m"}})["ok"], true);
  const json evicted = b.admin("evict", {{"model", "org/m"}});
  EXPECT_EQ(evicted["ok"], true) << evicted.dump();
  EXPECT_EQ(bytes_used(b), 0u);
  // A file of it is still a model of its own.
  Model one = c.acquire("org/m/model-00001-of-00002.safetensors");
  EXPECT_EQ(one.files().size(), 1u);
  EXPECT_EQ(as_string(one.tensor("l0.weight").data), tensor_bytes(shard1_, "l0.weight"));
}

TEST_F(Repository, ManifestPreloadsAndPinsItAndWorkersShareOneCopy) {
  ScratchDir etc;
  const std::string manifest =
      etc.write("manifest.json", R"({"tiny": {"path": "org/m", "pin": true, "preload": true}})");
  Broker b(models_.path(), {"--manifest", manifest});
  b.start();  // ready once the preload is in
  const json row = row_of(b, "tiny");
  ASSERT_TRUE(row.is_object()) << b.admin("list").dump();
  EXPECT_EQ(row["pinned"], true);
  EXPECT_EQ(row["file_count"], 5);
  const std::uint64_t used = bytes_used(b);
  EXPECT_GT(used, shard1_.size() + shard2_.size());
  // Three worker processes hold it at once: one copy, three references.
  std::vector<Child> workers;
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back(std::vector<std::string>{binary_path("clientlib/mp_worker"), "--socket",
                                                  b.worker_socket(), "--model", "tiny", "--hold"});
  }
  for (Child& w : workers) {
    auto line = w.read_line();
    ASSERT_TRUE(line) << "a worker exited";
    const json got = json::parse(*line);
    EXPECT_EQ(got["ok"], true) << *line;
    EXPECT_EQ(got["cached"], true) << *line;
  }
  EXPECT_EQ(row_of(b, "tiny")["refs"], 3);
  EXPECT_EQ(bytes_used(b), used);
  // A worker that dies without releasing gives its reference back.
  workers[0].kill(SIGKILL);
  workers[0].wait();
  for (std::size_t i = 1; i < workers.size(); ++i) {
    workers[i].close_stdin();
    workers[i].wait();
  }
  // Bounded: the broker sees the disconnects as they are read.
  json last;
  for (int i = 0; i < 200; ++i) {
    last = row_of(b, "tiny");
    if (last["refs"] == 0) break;
    b.admin("stats");  // one round trip: the broker's loop has run
  }
  EXPECT_EQ(last["refs"], 0) << last.dump();
}

TEST(RepositoryBudget, ARepositoryWithoutRoomLeavesNothingBehind) {
  ScratchDir models;
  constexpr std::size_t kFloats = 3 << 20;  // 12 MiB shards
  models.write("org/big/model-00001-of-00002.safetensors", safetensors({{"a", kFloats}}, 1));
  models.write("org/big/model-00002-of-00002.safetensors", safetensors({{"b", kFloats}}, 2));
  models.write_random("other.bin", 20 << 20, 7);
  Broker b(models.path(), {"--memory", "40MiB"});
  b.start();
  auto c = Client::connect(b.worker_socket());
  { Model other = c.acquire("other.bin"); }
  ASSERT_EQ(b.admin("pin", {{"model", "other.bin"}})["ok"], true);
  const std::uint64_t pinned = bytes_used(b);
  try {
    (void)c.acquire("org/big");
    FAIL() << "a repository larger than the room left was acquired";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPoolFull) << e.what();
  }
  EXPECT_EQ(bytes_used(b), pinned) << "a failed repository left files in the pool";
  ASSERT_EQ(b.admin("unpin", {{"model", "other.bin"}})["ok"], true);
  Model big = c.acquire("org/big");  // room is made by evicting the unpinned file
  EXPECT_EQ(big.tensors().size(), 2u);
  // Larger than the whole budget: too_large at once.
  models.write("org/huge/model-00001-of-00002.safetensors", safetensors({{"a", 6 << 20}}, 1));
  models.write("org/huge/model-00002-of-00002.safetensors", safetensors({{"b", 6 << 20}}, 2));
  try {
    (void)c.acquire("org/huge");
    FAIL() << "a repository larger than the budget was acquired";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTooLarge) << e.what();
  }
}

TEST_F(Repository, AClientThatLeavesDuringTheLoadCostsNothing) {
  Broker b(models_.path());
  b.start();
  for (int i = 0; i < 3; ++i) {
    RawConn raw(b.worker_socket());
    ASSERT_EQ(raw.request({{"op", "hello"}, {"id", 1}})["ok"], true);
    raw.send_frame(R"({"op":"acquire","id":2,"model":"org/m"})");
  }  // closed before the reply
  auto c = Client::connect(b.worker_socket());
  {
    Model m = c.acquire("org/m");
    EXPECT_EQ(m.tensors().size(), 4u);
    EXPECT_EQ(row_of(b, "org/m")["refs"], 1);
  }
  EXPECT_EQ(row_of(b, "org/m")["refs"], 0);
  EXPECT_EQ(b.admin("evict", {{"model", "org/m"}})["ok"], true);
  EXPECT_EQ(bytes_used(b), 0u);
}

TEST_F(Repository, AHeldRepositoryIsProtectedAgainAfterABrokerRestart) {
  Broker b(models_.path());
  b.start();
  auto c = Client::connect(b.worker_socket());
  Model m = c.acquire("org/m");
  const std::string before = as_string(m.tensor("l0.weight").data);
  b.kill9();
  b.start();  // adopts the segment: every file is resident, no group known yet
  EXPECT_EQ(b.admin("stats")["loads"], 0);
  Model other = c.acquire("org/m/config.json");  // reconnects, then re-acquires what it holds
  EXPECT_EQ(row_of(b, "org/m")["refs"], 1) << b.admin("list").dump();
  EXPECT_EQ(b.admin("stats")["loads"], 0) << "a file was read again";
  EXPECT_EQ(as_string(m.tensor("l0.weight").data), before);
  EXPECT_EQ(as_string(m.file("config.json")), config_);
}

TEST_F(Repository, AnIndexThatLiesIsLoadFailedWithTheReason) {
  const std::string repo = models_.path() + "/org/m/";
  // Names a tensor in the shard that does not hold it.
  put(repo + "model.safetensors.index.json",
      R"({"weight_map": {"l1.weight": "model-00001-of-00002.safetensors",)"
      R"("embed.weight": "model-00001-of-00002.safetensors"}})");
  Broker b(models_.path());
  b.start();
  auto c = Client::connect(b.worker_socket());
  try {
    (void)c.acquire("org/m");
    FAIL() << "acquired a repository whose index lies";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLoadFailed);
    EXPECT_NE(std::string(e.what()).find("l1.weight"), std::string::npos) << e.what();
  }
  // What it loaded is gone again; the broker serves the next request.
  EXPECT_EQ(bytes_used(b), 0u);
  // An index naming a file outside the repository, or a shard that is not there.
  const std::vector<std::pair<std::string, ErrorCode>> hostile = {
      {R"({"weight_map": {"l1.weight": "../../outside.safetensors"}})", ErrorCode::kForbidden},
      {R"({"weight_map": {"l1.weight": "model-00003-of-00003.safetensors"}})",
       ErrorCode::kLoadFailed}};
  models_.write("outside.safetensors", safetensors({{"l1.weight", 4}}, 4));
  for (const auto& [index, code] : hostile) {
    put(repo + "model.safetensors.index.json", index);
    try {
      (void)c.acquire("org/m");
      FAIL() << "acquired a repository whose index is " << index;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << index << ": " << e.what();
    }
    EXPECT_EQ(bytes_used(b), 0u) << index;
  }
  // A tensor in two shards.
  put(repo + "model.safetensors.index.json", "");
  fs::remove(repo + "model.safetensors.index.json");
  put(repo + "model-00002-of-00002.safetensors",
      safetensors({{"l1.weight", 4}, {"l0.weight", 4}}, 3));
  try {
    (void)c.acquire("org/m");
    FAIL() << "acquired a repository with a tensor in two shards";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLoadFailed);
    EXPECT_NE(std::string(e.what()).find("\"l0.weight\" is in both"), std::string::npos)
        << e.what();
  }
}

// A Hugging Face cache: models--org--m/{blobs/SHA256, snapshots/COMMIT/FILE
// -> ../../blobs/SHA256, refs/main}.
class HfCacheRepo : public ::testing::Test {
 protected:
  static constexpr const char* kC1 = "1111111111111111111111111111111111111111";
  static constexpr const char* kC2 = "2222222222222222222222222222222222222222";
  void SetUp() override {
    repo_ = cache_.path() + "/models--org--m";
    shard1_ = safetensors({{"embed.weight", 8 * kKiB}}, 1);
    shard2_v1_ = safetensors({{"head.weight", 4 * kKiB}}, 2);
    shard2_v2_ = safetensors({{"head.weight", 4 * kKiB}}, 3);
    blob("a1", shard1_);
    blob("b1", shard2_v1_);
    blob("b2", shard2_v2_);
    blob("cfg", R"({"model_type": "test"})");
    for (const char* commit : {kC1, kC2}) {
      link(commit, "model-00001-of-00002.safetensors", "a1");
      link(commit, "model-00002-of-00002.safetensors", commit == kC1 ? "b1" : "b2");
      link(commit, "config.json", "cfg");
    }
    set_ref("main", kC1);
  }
  void blob(const std::string& id, const std::string& bytes) { put(repo_ + "/blobs/" + id, bytes); }
  void link(const std::string& commit, const std::string& file, const std::string& id) {
    const std::string dir = repo_ + "/snapshots/" + commit;
    fs::create_directories(dir);
    fs::create_symlink("../../blobs/" + id, dir + "/" + file);
  }
  void set_ref(const std::string& ref, const std::string& commit) {
    put(repo_ + "/refs/" + ref, commit);
  }
  ScratchDir models_, cache_;
  std::string repo_, shard1_, shard2_v1_, shard2_v2_;
};

TEST_F(HfCacheRepo, RevisionsShareABlobAndEachReadsItsOwnBytes) {
  Broker b(models_.path(), {"--hf-cache", cache_.path()});
  b.start();
  auto c = Client::connect(b.worker_socket());
  Model v1 = c.acquire("hf:org/m");
  EXPECT_EQ(v1.commit(), kC1);
  EXPECT_EQ(as_string(v1.tensor("head.weight").data), tensor_bytes(shard2_v1_, "head.weight"));
  const std::uint64_t after_v1 = bytes_used(b);
  Model v2 = c.acquire(std::string("hf:org/m@") + kC2);
  EXPECT_EQ(v2.commit(), kC2);
  EXPECT_EQ(as_string(v2.tensor("head.weight").data), tensor_bytes(shard2_v2_, "head.weight"));
  EXPECT_EQ(as_string(v2.tensor("embed.weight").data), tensor_bytes(shard1_, "embed.weight"));
  // The shared shard is held once: the second revision added only its own shard.
  const std::uint64_t added = bytes_used(b) - after_v1;
  EXPECT_LT(added, shard1_.size()) << "the shared shard was loaded twice";
  EXPECT_GE(added, shard2_v2_.size());
  EXPECT_EQ(row_of(b, "hf:org/m")["commit"], kC1);

  // refs/main moves: the next acquire is the new revision; the old handle
  // keeps its bytes.
  set_ref("main", kC2);
  Model now = c.acquire("hf:org/m");
  EXPECT_EQ(now.commit(), kC2);
  EXPECT_EQ(as_string(now.tensor("head.weight").data), tensor_bytes(shard2_v2_, "head.weight"));
  EXPECT_EQ(as_string(v1.tensor("head.weight").data), tensor_bytes(shard2_v1_, "head.weight"));
}

TEST_F(HfCacheRepo, TheManifestNamesASnapshotToPreload) {
  const std::string manifest =
      models_.write("manifest.json", R"({"m": {"path": "hf:org/m", "preload": true}})");
  Broker b(models_.path(), {"--hf-cache", cache_.path(), "--manifest", manifest});
  b.start();
  const json row = row_of(b, "m");
  ASSERT_TRUE(row.is_object()) << b.admin("list").dump();
  EXPECT_EQ(row["commit"], kC1);
  EXPECT_EQ(row["file_count"], 3);
}

TEST_F(HfCacheRepo, AMissingRevisionOrAnEscapingLinkIsRefused) {
  // A snapshot file that points outside the cache.
  ScratchDir outside;
  const std::string secret = outside.write("secret.safetensors", safetensors({{"w", 4}}, 9));
  const std::string c3 = "3333333333333333333333333333333333333333";
  fs::create_directories(repo_ + "/snapshots/" + c3);
  fs::create_symlink(secret, repo_ + "/snapshots/" + c3 + "/model.safetensors");
  Broker b(models_.path(), {"--hf-cache", cache_.path()});
  b.start();
  auto c = Client::connect(b.worker_socket());
  try {
    (void)c.acquire("hf:org/m@v9");
    FAIL() << "acquired a revision the cache does not have";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("main"), std::string::npos) << e.what();
  }
  try {
    (void)c.acquire("hf:org/m@" + c3);
    FAIL() << "served a file outside the cache";
  } catch (const Error& e) {
    EXPECT_TRUE(e.code() == ErrorCode::kForbidden || e.code() == ErrorCode::kNotFound) << e.what();
  }
  EXPECT_EQ(bytes_used(b), 0u);
}

// llama.cpp's gguf-split layout: PREFIX-0000N-of-0000M.gguf, split.no from
// 0, split.count and split.tensors.count in every part.
std::string gguf_part(std::uint16_t no, std::uint16_t count, unsigned first, unsigned n,
                      unsigned total) {
  using namespace format::testing;
  GgufBuilder b;
  b.kv("split.no", 2, le(no, 2)).kv("split.count", 2, le(count, 2));
  b.kv("split.tensors.count", kI32, u32(total));
  for (unsigned t = 0; t < n; ++t) {
    b.tensor("blk." + std::to_string(first + t) + ".weight", {8}, kF32, t * 32ull);
  }
  std::string bytes = b.build(n * 32ull);
  // Each tensor's bytes name it: byte i of tensor t is (t * 16 + i).
  const std::size_t data = bytes.size() - n * 32ull;
  for (unsigned t = 0; t < n; ++t) {
    for (unsigned i = 0; i < 32; ++i)
      bytes[data + t * 32 + i] = static_cast<char>((first + t) * 16 + i);
  }
  return bytes;
}

TEST(SplitSet, IsOneModelWhoseTensorsSpanItsParts) {
  ScratchDir models;
  const std::vector<unsigned> per_part = {2, 3, 1};
  std::map<std::string, std::string> expect;  // tensor -> bytes
  unsigned first = 0;
  for (unsigned p = 0; p < per_part.size(); ++p) {
    const std::string name = "org/q4-0000" + std::to_string(p + 1) + "-of-00003.gguf";
    const std::string bytes = gguf_part(static_cast<std::uint16_t>(p), 3, first, per_part[p], 6);
    models.write(name, bytes);
    for (unsigned t = 0; t < per_part[p]; ++t) {
      std::string want(32, '\0');
      for (unsigned i = 0; i < 32; ++i) want[i] = static_cast<char>((first + t) * 16 + i);
      expect["blk." + std::to_string(first + t) + ".weight"] = want;
    }
    first += per_part[p];
  }
  Broker b(models.path());
  b.start();
  auto c = Client::connect(b.worker_socket());
  {
    Model m = c.acquire("org/q4-00002-of-00003.gguf");  // any part brings in the set
    ASSERT_EQ(m.files().size(), 3u);
    ASSERT_EQ(m.tensors().size(), 6u);
    for (const Tensor& t : m.tensors()) EXPECT_EQ(as_string(t.data), expect.at(t.name)) << t.name;
    EXPECT_EQ(m.tensors().front().name, "blk.0.weight");
    EXPECT_EQ(m.tensors().back().name, "blk.5.weight");
  }
  b.admin("clear");
  fs::remove(models.path() + "/org/q4-00003-of-00003.gguf");
  try {
    (void)c.acquire("org/q4-00001-of-00003.gguf");
    FAIL() << "acquired an incomplete split set";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("00003-of-00003"), std::string::npos) << e.what();
  }
  EXPECT_EQ(bytes_used(b), 0u);
}

}  // namespace
}  // namespace modelpool::testing
