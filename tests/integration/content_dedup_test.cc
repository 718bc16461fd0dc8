// File: tests/integration/content_dedup_test.cc
//
// One copy per content: two different files with the same bytes (a model
// copied under two names, the same shard in two repositories of a Hugging
// Face cache, each with its own blob) end up as one copy in the pool once
// both are loaded, while each name keeps its own references and statistics.
// Files of the same size whose bytes differ are never merged, and a file
// changed underneath moves its name to its new bytes alone. Real broker,
// real worker processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "broker_fixture.hpp"
#include "modelpool/client.hpp"
#include "repo_files.hpp"

namespace modelpool::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kMiB = 1ULL << 20;

Child hold(const Broker& b, const std::string& model, const std::string& verify) {
  return Child({binary_path("clientlib/mp_worker"), "--socket", b.worker_socket(), "--model", model,
                "--verify", verify, "--hold"});
}

json line_of(Child& c) {
  auto line = c.read_line();
  return line ? json::parse(*line) : json{{"ok", false}, {"code", "no_output"}};
}

// The row of `name`'s current generation.
json current_row(const Broker& b, const std::string& name) {
  for (const json& r : b.admin("list")["models"]) {
    if (r["name"] == name && r["current"] == true) return r;
  }
  return json();
}

TEST(ContentDedup, TwoFilesWithTheSameBytesHoldOneCopy) {
  ScratchDir models;
  const std::string a = models.write_random("a/m.bin", 8 * kMiB, 5);
  const std::string b = models.write_random("b/m.bin", 8 * kMiB, 5);  // a copy: another inode
  const std::string c = models.write_random("c/m.bin", 8 * kMiB, 6);  // the same size only
  Broker broker(models.path());
  broker.start();
  std::vector<Child> workers;
  for (const auto& [name, file] : {std::pair{"a/m.bin", a}, {"b/m.bin", b}, {"c/m.bin", c}}) {
    workers.push_back(hold(broker, name, file));
    const json r = line_of(workers.back());
    ASSERT_TRUE(r["ok"].get<bool>()) << name << ": " << r.dump();
    EXPECT_TRUE(r["file_ok"].get<bool>()) << name << " reads its file's bytes";
  }
  const json stats = broker.admin("stats");
  EXPECT_EQ(stats["loads"], 3) << "each file is read once";
  EXPECT_EQ(stats["bytes_used"], 16 * kMiB) << "a and b are one copy, c its own: " << stats.dump();
  const json ra = row_of(broker, "a/m.bin"), rb = row_of(broker, "b/m.bin"),
             rc = row_of(broker, "c/m.bin");
  EXPECT_EQ(rb["shares"], "a/m.bin") << rb.dump();
  EXPECT_EQ(rb["offset"], ra["offset"]);
  EXPECT_FALSE(rc.contains("shares")) << "same size, other bytes: " << rc.dump();
  EXPECT_NE(rc["offset"], ra["offset"]);
  for (const json& r : {ra, rb, rc}) EXPECT_EQ(r["refs"], 1) << r.dump();
  EXPECT_TRUE(broker.admin("selfcheck")["consistent"].get<bool>());

  // b's file changes: b moves to its new bytes, a and the worker holding
  // b's old bytes keep theirs.
  const std::string fresh = models.write_random("b/m.bin.new", 4 * kMiB, 7);
  ASSERT_EQ(std::rename(fresh.c_str(), b.c_str()), 0);
  Child nb = hold(broker, "b/m.bin", b);
  json r = line_of(nb);
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(r["file_ok"].get<bool>()) << "the new bytes";
  EXPECT_FALSE(current_row(broker, "b/m.bin").contains("shares"));
  for (Child& w : workers) {
    ASSERT_TRUE(w.write_line("check"));
    EXPECT_TRUE(line_of(w)["same"].get<bool>()) << "a held copy never changes";
  }
  workers.clear();
  EXPECT_TRUE(broker.admin("selfcheck")["consistent"].get<bool>())
      << broker.admin("selfcheck").dump();
}

// Two repositories of one Hugging Face cache, each with its own blob of the
// same shard (a copy, as a cache filled twice has): one copy of it.
TEST(ContentDedup, RepositoriesWithTheSameShardInTheirOwnBlobsHoldItOnce) {
  ScratchDir models, cache;
  const std::string shard = safetensors({{"embed.weight", 64 * kKiB}}, 1);
  const std::string head_a = safetensors({{"head.weight", 4 * kKiB}}, 2);
  const std::string head_b = safetensors({{"head.weight", 4 * kKiB}}, 3);
  const std::string commit = "3333333333333333333333333333333333333333";
  auto repo = [&](const std::string& name, const std::string& head) {
    const std::string root = cache.path() + "/models--org--" + name;
    put(root + "/blobs/s1", shard);
    put(root + "/blobs/s2", head);
    const std::string snap = root + "/snapshots/" + commit;
    fs::create_directories(snap);
    fs::create_symlink("../../blobs/s1", snap + "/model-00001-of-00002.safetensors");
    fs::create_symlink("../../blobs/s2", snap + "/model-00002-of-00002.safetensors");
    put(root + "/refs/main", commit);
  };
  repo("a", head_a);
  repo("b", head_b);
  Broker b(models.path(), {"--hf-cache", cache.path()});
  b.start();
  auto c = Client::connect(b.worker_socket());
  Model ma = c.acquire("hf:org/a");
  const std::uint64_t after_a = bytes_used(b);
  Model mb = c.acquire("hf:org/b");
  const std::uint64_t added = bytes_used(b) - after_a;
  EXPECT_LT(added, shard.size()) << "the shard is held twice";
  EXPECT_GE(added, head_b.size());
  EXPECT_EQ(as_string(mb.tensor("embed.weight").data), tensor_bytes(shard, "embed.weight"));
  EXPECT_EQ(as_string(mb.tensor("head.weight").data), tensor_bytes(head_b, "head.weight"));
  EXPECT_EQ(as_string(ma.tensor("head.weight").data), tensor_bytes(head_a, "head.weight"));
  const std::string shard_of = "@" + commit + "/model-00001-of-00002.safetensors";
  EXPECT_EQ(row_of(b, "hf:org/b" + shard_of)["shares"], "hf:org/a" + shard_of)
      << b.admin("list").dump();
  ma.release();
  EXPECT_EQ(as_string(mb.tensor("embed.weight").data), tensor_bytes(shard, "embed.weight"))
      << "a's release leaves b's references";
  EXPECT_TRUE(b.admin("selfcheck")["consistent"].get<bool>()) << b.admin("selfcheck").dump();
}

}  // namespace
}  // namespace modelpool::testing
