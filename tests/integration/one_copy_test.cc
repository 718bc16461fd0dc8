// File: tests/integration/one_copy_test.cc
//
// One resident copy per file: the path itself, a symlink inside --models and
// a manifest alias of one file share one load and one copy of its bytes,
// while `list` keeps each name's references. When the file is replaced, each
// name moves to the new bytes on its next acquire, and the workers still
// holding the old ones keep them intact. A name whose extension promises
// another format does not share. Real broker, real worker processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "broker_fixture.hpp"

namespace modelpool::testing {
namespace {

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

}  // namespace
}  // namespace modelpool::testing
