// File: tests/budget/generation_test.cc
//
// Generations through the real broker and the real client library: when the
// file behind a name changes (new inode, new size, new mtime), the next
// acquire loads a new generation, while holders of the old one keep reading
// its unchanged bytes; the old extent is freed at its last release.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>

#include "budget_util.hpp"
#include "modelpool/client.hpp"

namespace modelpool::testing {
namespace {

constexpr std::uint64_t kSize = 8 * kMiB;

bool same_bytes(const Model& m, const std::string& want) {
  auto b = m.bytes();
  return b.size() == want.size() && std::memcmp(b.data(), want.data(), want.size()) == 0;
}

// Rows of `name` in the pool, all generations.
std::vector<json> rows_of(const Broker& broker, const std::string& name) {
  std::vector<json> out;
  const json list = broker.admin("list");
  for (const auto& row : list["models"]) {
    if (row["name"] == name) out.push_back(row);
  }
  return out;
}

// Replaces models/name with `bytes` under a new inode (write, then rename).
std::string replace_file(ScratchDir& models, const std::string& name, const std::string& bytes) {
  const std::string tmp = models.write(name + ".next", bytes);
  std::filesystem::rename(tmp, models.path() + "/" + name);
  return models.path() + "/" + name;
}

json read_json_line(Child& c) {
  auto line = c.read_line();
  return line ? json::parse(*line) : json{{"ok", false}, {"code", "no_output"}};
}

TEST(Generation, OldHolderKeepsReadingItsBytesWhileTheNextGenerationLoads) {
  ScratchDir models;
  const std::string v1 = read_file(models.write_random("m", kSize, 1));
  const std::string v1_copy = models.write("v1.copy", v1);
  Broker broker(models.path());
  broker.start();

  Client client = Client::connect(broker.worker_socket());
  Model old = client.acquire("m");
  EXPECT_EQ(old.generation(), 1U);
  ASSERT_TRUE(same_bytes(old, v1));
  // A second process holds generation 1 too.
  Child other({binary_path("clientlib/mp_worker"), "--socket", broker.worker_socket(), "--model",
               "m", "--verify", v1_copy, "--hold"});
  json o = read_json_line(other);
  ASSERT_TRUE(o["ok"].get<bool>()) << o.dump();
  EXPECT_EQ(o["generation"], 1);
  EXPECT_TRUE(o["file_ok"].get<bool>());

  std::string v2 = v1;
  for (std::size_t i = 0; i < v2.size(); i += 4096) v2[i] = static_cast<char>(~v2[i]);
  const std::string v2_path = replace_file(models, "m", v2);
  Model fresh = client.acquire("m");
  EXPECT_EQ(fresh.generation(), 2U);
  EXPECT_FALSE(fresh.cached());
  EXPECT_TRUE(same_bytes(fresh, v2));
  EXPECT_TRUE(same_bytes(old, v1)) << "generation 1 changed under its holder";
  EXPECT_NE(old.bytes().data(), fresh.bytes().data());

  auto rows = rows_of(broker, "m");
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0]["generation"], 1);
  EXPECT_EQ(rows[0]["current"], false);
  EXPECT_EQ(rows[0]["refs"], 2);
  EXPECT_EQ(rows[1]["generation"], 2);
  EXPECT_EQ(rows[1]["current"], true);
  EXPECT_EQ(broker.admin("stats")["bytes_used"], 2 * kSize);

  // A new worker gets generation 2, already resident.
  Child late({binary_path("clientlib/mp_worker"), "--socket", broker.worker_socket(), "--model",
              "m", "--verify", v2_path});
  json l = read_json_line(late);
  EXPECT_EQ(l["generation"], 2);
  EXPECT_TRUE(l["cached"].get<bool>());
  EXPECT_TRUE(l["file_ok"].get<bool>());
  EXPECT_EQ(late.wait(), 0);

  old.release();
  EXPECT_EQ(rows_of(broker, "m").size(), 2U);  // the other process still holds it
  const std::uint64_t seg_before = segment_resident_bytes(broker);
  other.close_stdin();
  EXPECT_EQ(other.wait(), 0);
  // The broker notices the disconnect asynchronously: poll until the old
  // generation is gone.
  json list = admin_until(broker, "list", [](const json& l) { return l["models"].size() == 1; });
  ASSERT_EQ(list["models"].size(), 1U);
  EXPECT_EQ(list["models"][0]["generation"], 2);
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["bytes_used"], kSize);
  EXPECT_LE(segment_resident_bytes(broker) + kSize, seg_before + kMiB);  // punched at once
  EXPECT_EQ(self_check_problems(broker), json::array());
  EXPECT_TRUE(same_bytes(fresh, v2));
}

TEST(Generation, SizeOrMtimeChangeAloneMakesANewGeneration) {
  ScratchDir models;
  const std::string path = models.write_random("m", kSize, 1);
  Broker broker(models.path());
  broker.start();
  Client client = Client::connect(broker.worker_socket());
  EXPECT_EQ(client.acquire("m").generation(), 1U);
  EXPECT_TRUE(client.acquire("m").cached());

  // Same inode, new size.
  const std::string longer = read_file(path) + std::string(4096, 'z');
  models.write("m", longer);
  Model g2 = client.acquire("m");
  EXPECT_EQ(g2.generation(), 2U);
  EXPECT_EQ(g2.size(), longer.size());
  EXPECT_TRUE(same_bytes(g2, longer));

  // Same inode and bytes, only the mtime moves.
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  timespec times[2] = {st.st_atim, st.st_mtim};
  times[1].tv_sec += 10;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  Model g3 = client.acquire("m");
  EXPECT_EQ(g3.generation(), 3U);
  EXPECT_FALSE(g3.cached());
  EXPECT_TRUE(same_bytes(g2, longer));
  EXPECT_TRUE(same_bytes(g3, longer));
  g2.release();
  auto rows = rows_of(broker, "m");
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0]["generation"], 3);
  EXPECT_EQ(self_check_problems(broker), json::array());
}

}  // namespace
}  // namespace modelpool::testing
