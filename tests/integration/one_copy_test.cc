// File: tests/integration/one_copy_test.cc
//
// One resident copy per file: the path itself, a symlink inside --models and
// a manifest alias of one file share one load and one copy of its bytes,
// while `list` keeps each name's references. When the file is replaced, each
// name moves to the new bytes on its next acquire, and the workers still
// holding the old ones keep them intact. A name whose extension promises
// another format does not share. Two different files with the same bytes (a
// model copied under two names, the same shard in two repositories of a
// Hugging Face cache, each with its own blob) end up as one copy once both
// are loaded, while files of the same size whose bytes differ never do.
// Real broker, real worker processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
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

std::map<std::string, json> rows(const Broker& b) {
  std::map<std::string, json> out;
  const json list = b.admin("list");
  for (const json& r : list["models"]) {
    if (r["current"] == true) out[r["name"].get<std::string>()] = r;
  }
  return out;
}

class OneCopy : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = models_.write_random("org/m.bin", 8 * kMiB, 3);
    ASSERT_EQ(::symlink("org/m.bin", (models_.path() + "/link.bin").c_str()), 0);
    manifest_ = scratch_.path() + "/manifest.json";
    std::ofstream(manifest_) << R"({"alias": "org/m.bin"})";
  }
  ScratchDir models_, scratch_;
  std::string file_, manifest_;
};

TEST_F(OneCopy, ThreeNamesOfOneFileShareOneLoadAndOneCopy) {
  Broker b(models_.path(), {"--manifest", manifest_});
  b.start();
  std::vector<Child> workers;
  for (const char* name : {"org/m.bin", "link.bin", "alias"}) {
    workers.push_back(hold(b, name, file_));
    const json r = line_of(workers.back());
    ASSERT_TRUE(r["ok"].get<bool>()) << name << ": " << r.dump();
    EXPECT_TRUE(r["file_ok"].get<bool>()) << name;
    EXPECT_TRUE(r["checksum_ok"].get<bool>()) << name;
  }
  const json stats = b.admin("stats");
  EXPECT_EQ(stats["loads"], 1) << stats.dump();
  EXPECT_EQ(stats["bytes_used"], 8 * kMiB) << "one copy, not three";
  auto by_name = rows(b);
  ASSERT_EQ(by_name.size(), 3U) << b.admin("list").dump();
  for (const char* name : {"org/m.bin", "link.bin", "alias"}) {
    EXPECT_EQ(by_name[name]["refs"], 1) << name << " keeps its own references";
    EXPECT_EQ(by_name[name]["offset"], by_name["org/m.bin"]["offset"]) << name;
  }
  EXPECT_FALSE(by_name["org/m.bin"].contains("shares"));
  EXPECT_EQ(by_name["link.bin"]["shares"], "org/m.bin");
  EXPECT_EQ(by_name["alias"]["shares"], "org/m.bin");
  EXPECT_TRUE(b.admin("selfcheck")["consistent"].get<bool>()) << b.admin("selfcheck").dump();

  // The file is replaced: each name gets the new bytes on its next acquire,
  // once, and the old copy stays whole under the workers that hold it.
  const std::string fresh = models_.write_random("org/m.bin.new", 6 * kMiB, 4);
  ASSERT_EQ(std::rename(fresh.c_str(), file_.c_str()), 0);
  for (const char* name : {"link.bin", "alias", "org/m.bin"}) {
    Child w = hold(b, name, file_);
    const json r = line_of(w);
    ASSERT_TRUE(r["ok"].get<bool>()) << name << ": " << r.dump();
    EXPECT_TRUE(r["file_ok"].get<bool>()) << name << " has the new bytes";
    EXPECT_EQ(r["size"], 6 * kMiB);
  }
  EXPECT_EQ(b.admin("stats")["loads"], 2) << "the new file is loaded once for all three names";
  for (Child& w : workers) {
    ASSERT_TRUE(w.write_line("check"));
    EXPECT_TRUE(line_of(w)["same"].get<bool>()) << "a held copy never changes";
  }
  workers.clear();  // stdin closes: the workers release and exit
  by_name = rows(b);
  ASSERT_EQ(by_name.size(), 3U);
  EXPECT_EQ(by_name["alias"]["offset"], by_name["link.bin"]["offset"]);
  EXPECT_EQ(by_name["org/m.bin"]["offset"], by_name["link.bin"]["offset"]);
  const json s = b.admin("selfcheck");
  EXPECT_TRUE(s["consistent"].get<bool>()) << s.dump();
}

TEST_F(OneCopy, EvictingOneNameKeepsTheBytesForTheOthers) {
  Broker b(models_.path(), {"--manifest", manifest_});
  b.start();
  RawConn c(b.worker_socket());
  ASSERT_TRUE(c.request({{"op", "acquire"}, {"model", "org/m.bin"}})["ok"].get<bool>());
  const json a = c.request({{"op", "acquire"}, {"model", "alias"}});
  ASSERT_TRUE(a["ok"].get<bool>()) << a.dump();
  json r = b.admin("evict", {{"model", "org/m.bin"}});
  EXPECT_FALSE(r["ok"].get<bool>()) << "in use through both names: " << r.dump();
  ASSERT_TRUE(c.request({{"op", "release"}, {"handle", a["handle"]}})["ok"].get<bool>());
  r = b.admin("evict", {{"model", "alias"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["bytes"], 0) << "the name goes, the bytes stay";
  EXPECT_EQ(b.admin("stats")["bytes_used"], 8 * kMiB);
  r = c.request({{"op", "acquire"}, {"model", "alias"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(r["cached"].get<bool>()) << "shared again, not loaded again";
  EXPECT_EQ(b.admin("stats")["loads"], 1);
  EXPECT_TRUE(b.admin("selfcheck")["consistent"].get<bool>());
}

TEST_F(OneCopy, ANameThatPromisesAnotherFormatDoesNotShare) {
  ASSERT_EQ(::symlink("org/m.bin", (models_.path() + "/fake.safetensors").c_str()), 0);
  Broker b(models_.path());
  b.start();
  RawConn c(b.worker_socket());
  ASSERT_TRUE(c.request({{"op", "acquire"}, {"model", "org/m.bin"}})["ok"].get<bool>());
  const json r = c.request({{"op", "acquire"}, {"model", "fake.safetensors"}});
  EXPECT_FALSE(r["ok"].get<bool>()) << "random bytes are no safetensors: " << r.dump();
  EXPECT_EQ(r["error"]["code"], "load_failed") << r.dump();
}

// The row of `name`'s current generation.
json current_row(const Broker& b, const std::string& name) {
  const json list = b.admin("list");  // the rows live as long as the loop
  for (const json& r : list["models"]) {
    if (r["name"] == name && r["current"] == true) return r;
  }
  return json();
}

TEST(OneCopyPerContent, TwoFilesWithTheSameBytesHoldOneCopy) {
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
TEST(OneCopyPerContent, RepositoriesWithTheSameShardInTheirOwnBlobsHoldItOnce) {
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
