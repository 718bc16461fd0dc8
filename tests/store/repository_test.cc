// File: tests/store/repository_test.cc
//
// Which files make up a repository (scan_repository) and how hf: names find
// their snapshot in a Hugging Face cache laid out as huggingface_hub lays it
// out (HfCache), on real directories, symlinks and files: index order,
// pickled weights skipped, and each hostile layout refused with its typed
// error (an index naming a file outside the repository or a missing shard,
// a snapshot symlink that leaves the cache, a revision not in the cache).
#include "broker/store/repository.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "broker/store/hf_cache.hpp"
#include "store_test_util.hpp"

namespace modelpool::broker {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void put(const std::string& path, std::size_t size, std::uint64_t seed = 1) {
  fs::create_directories(fs::path(path).parent_path());
  testing::write_file(path, testing::random_bytes(size, seed));
}

void put_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  testing::write_file(path, std::vector<char>(text.begin(), text.end()));
}

std::vector<std::string> names_of(const std::vector<RepositoryFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.name);
  return out;
}

class RepositoryTest : public ::testing::Test {
 protected:
  NameResolver names() { return std::move(NameResolver::open(root_.path()).value()); }
  std::string repo(const std::string& rel) { return root_.path() + "/" + rel; }
  TempDir root_;
};

TEST_F(RepositoryTest, ShardsInIndexOrderPlusSmallFilesAndNeverPickles) {
  put(repo("org/m/model-00002-of-00002.safetensors"), 3000, 2);
  put(repo("org/m/model-00001-of-00002.safetensors"), 2000, 1);
  put(repo("org/m/pytorch_model.bin"), 100);
  put(repo("org/m/tokenizer.model"), 50);
  put_text(repo("org/m/config.json"), R"({"hidden_size": 8})");
  put_text(repo("org/m/README.md"), "# m");
  // weight_map keys out of alphabetical order: the shards follow the map.
  put_text(repo("org/m/model.safetensors.index.json"),
           R"({"metadata": {"total_size": 5000}, "weight_map": {)"
           R"("z.weight": "model-00002-of-00002.safetensors",)"
           R"("a.weight": "model-00001-of-00002.safetensors",)"
           R"("b.weight": "model-00002-of-00002.safetensors"}})");
  auto files = scan_repository(names(), "org/m");
  ASSERT_TRUE(files.ok()) << files.status().message();
  EXPECT_TRUE(files->indexed);
  EXPECT_EQ(names_of(files->weights),
            (std::vector<std::string>{"model-00002-of-00002.safetensors",
                                      "model-00001-of-00002.safetensors"}));
  EXPECT_EQ(files->weights[0].size, 3000u);
  EXPECT_EQ(
      names_of(files->small),
      (std::vector<std::string>{"config.json", "model.safetensors.index.json", "tokenizer.model"}));
  EXPECT_EQ(files->skipped, std::vector<std::string>{"pytorch_model.bin (pickled)"});
  EXPECT_EQ(files->bytes(), 3000u + 2000u + 50u + files->small[0].size + files->small[1].size);
}

TEST_F(RepositoryTest, WithoutAnIndexEverySafetensorsByNameAndSmallFilesUnderTheLimit) {
  put(repo("m/b.safetensors"), 10);
  put(repo("m/a.safetensors"), 10);
  put(repo("m/tokenizer.json"), 5000);
  put(repo("m/sub/c.safetensors"), 10);  // a subdirectory's files do not count
  RepositoryLimits limits;
  limits.max_small_file = 4096;
  auto files = scan_repository(names(), "m", limits);
  ASSERT_TRUE(files.ok()) << files.status().message();
  EXPECT_FALSE(files->indexed);
  EXPECT_EQ(names_of(files->weights), (std::vector<std::string>{"a.safetensors", "b.safetensors"}));
  EXPECT_TRUE(files->small.empty());
  EXPECT_EQ(files->skipped,
            std::vector<std::string>{"tokenizer.json (larger than the small-file limit)"});
}

TEST_F(RepositoryTest, HostileOrBrokenRepositoriesAreRefusedWithTheirReason) {
  struct Case {
    std::string index;
    ErrorCode code;
    std::string says;
  };
  put(repo("secret.safetensors"), 10);  // beside the repository, in the root
  const std::vector<Case> cases = {
      {R"({"weight_map": {"w": "../secret.safetensors"}})", ErrorCode::kForbidden,
       "not a file of the repository"},
      {R"({"weight_map": {"w": "/etc/passwd"}})", ErrorCode::kForbidden,
       "not a file of the repository"},
      {R"({"weight_map": {"w": "model-00009-of-00009.safetensors"}})", ErrorCode::kLoadFailed,
       "missing shard \"model-00009-of-00009.safetensors\""},
      {R"({"weight_map": {"w": "pytorch_model.bin"}})", ErrorCode::kLoadFailed,
       "pickled weights are never loaded"},
      {R"({"weight_map": {"w": 7}})", ErrorCode::kLoadFailed, "is not a string"},
      {R"({"metadata": {}})", ErrorCode::kLoadFailed, "no \"weight_map\""},
      {R"({"weight_map": {}})", ErrorCode::kLoadFailed, "names no shard"},
      {"not json", ErrorCode::kLoadFailed, "no \"weight_map\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.index);
    put(repo("r/model-00001-of-00009.safetensors"), 10);
    put_text(repo("r/model.safetensors.index.json"), c.index);
    auto files = scan_repository(names(), "r");
    ASSERT_FALSE(files.ok());
    EXPECT_EQ(files.status().code(), c.code) << files.status().message();
    EXPECT_NE(files.status().message().find(c.says), std::string::npos) << files.status().message();
  }
  // A shard that is a symlink out of the root.
  fs::remove(repo("r/model.safetensors.index.json"));
  fs::remove(repo("r/model-00001-of-00009.safetensors"));
  fs::create_symlink("/etc/hostname", repo("r/model.safetensors"));
  auto out = scan_repository(names(), "r");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kForbidden) << out.status().message();

  EXPECT_EQ(scan_repository(names(), "nothing-here").status().code(), ErrorCode::kNotFound);
  put(repo("empty/config.json"), 10);
  EXPECT_EQ(scan_repository(names(), "empty").status().code(), ErrorCode::kNotFound);
}

// A cache as huggingface_hub writes it: blobs by etag, snapshot symlinks to
// them, refs holding commit hashes.
class HfCacheTest : public ::testing::Test {
 protected:
  static constexpr char kOld[] = "1111111111111111111111111111111111111111";
  static constexpr char kNew[] = "2222222222222222222222222222222222222222";
  std::string at(const std::string& rel) { return root_.path() + "/" + rel; }
  void blob(const std::string& etag, std::size_t size, std::uint64_t seed) {
    put(at("models--org--m/blobs/" + etag), size, seed);
  }
  void link(const std::string& commit, const std::string& file, const std::string& etag) {
    fs::create_directories(at("models--org--m/snapshots/" + commit));
    fs::create_symlink("../../blobs/" + etag,
                       at("models--org--m/snapshots/" + commit + "/" + file));
  }
  void ref(const std::string& name, const std::string& commit) {
    put_text(at("models--org--m/refs/" + name), commit);
  }
  HfCache cache() { return std::move(HfCache::open(root_.path()).value()); }
  TempDir root_;
};

TEST_F(HfCacheTest, NamesParseAndBadOnesAreInvalid) {
  auto n = parse_hf_name("hf:Qwen/Qwen2.5-0.5B@v1.0");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->repo, "Qwen/Qwen2.5-0.5B");
  EXPECT_EQ(n->revision, "v1.0");
  EXPECT_EQ(parse_hf_name("hf:gpt2")->revision, "main");
  EXPECT_EQ(parse_hf_name("hf:org/m@refs/pr/1")->revision, "refs/pr/1");
  for (const char* bad :
       {"hf:", "hf:a/b/c", "hf:../m", "hf:org/..", "hf:org--x/m", "hf:org/m@", "hf:org/m@../../etc",
        "hf:org/m@a//b", "hf:.hidden/m", "org/m", "hf:org/m\n"}) {
    EXPECT_EQ(parse_hf_name(bad).status().code(), ErrorCode::kInvalidName) << bad;
  }
}

TEST_F(HfCacheTest, RevisionsResolveThroughRefsOrCommitsAndShareBlobs) {
  blob("aaaa", 4096, 1);  // shared by both revisions
  blob("bbbb", 100, 2);
  blob("cccc", 100, 3);
  link(kOld, "model.safetensors", "aaaa");
  link(kOld, "config.json", "bbbb");
  link(kNew, "model.safetensors", "aaaa");
  link(kNew, "config.json", "cccc");
  ref("main", std::string(kOld) + "\n");
  ref("v2", kNew);
  HfCache c = cache();

  auto main = c.snapshot(*parse_hf_name("hf:org/m"));
  ASSERT_TRUE(main.ok()) << main.status().message();
  EXPECT_EQ(main->commit, kOld);
  EXPECT_EQ(main->dir, std::string("models--org--m/snapshots/") + kOld);
  auto by_commit = c.snapshot(*parse_hf_name(std::string("hf:org/m@") + kNew));
  ASSERT_TRUE(by_commit.ok()) << by_commit.status().message();
  EXPECT_EQ(by_commit->commit, kNew);
  EXPECT_EQ(c.snapshot(*parse_hf_name("hf:org/m@v2"))->commit, kNew);

  // Both snapshots' weights are the same blob: one identity, so one copy.
  auto a = c.files().resolve(main->dir + "/model.safetensors");
  auto b = c.files().resolve(by_commit->dir + "/model.safetensors");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->identity().inode, b->identity().inode);
  auto files = scan_repository(c.files(), main->dir);
  ASSERT_TRUE(files.ok()) << files.status().message();
  EXPECT_EQ(names_of(files->weights), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(names_of(files->small), std::vector<std::string>{"config.json"});

  // refs/main moves: the next resolution sees the new commit.
  ref("main", kNew);
  EXPECT_EQ(c.snapshot(*parse_hf_name("hf:org/m"))->commit, kNew);
}

TEST_F(HfCacheTest, WhatIsNotInTheCacheIsNotFoundAndSaysWhatIs) {
  blob("aaaa", 10, 1);
  link(kOld, "model.safetensors", "aaaa");
  ref("main", kOld);
  HfCache c = cache();
  auto missing_rev = c.snapshot(*parse_hf_name("hf:org/m@v9"));
  ASSERT_EQ(missing_rev.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing_rev.status().message().find("refs main; snapshots 111111111111"),
            std::string::npos)
      << missing_rev.status().message();
  auto missing_commit = c.snapshot(*parse_hf_name(std::string("hf:org/m@") + kNew));
  EXPECT_EQ(missing_commit.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(c.snapshot(*parse_hf_name("hf:org/other")).status().code(), ErrorCode::kNotFound);
  ref("broken", "not a commit");
  EXPECT_EQ(c.snapshot(*parse_hf_name("hf:org/m@broken")).status().code(), ErrorCode::kLoadFailed);
}

TEST_F(HfCacheTest, ASnapshotSymlinkThatLeavesTheCacheIsForbidden) {
  TempDir outside;
  put(outside.path() + "/stolen.safetensors", 10);
  fs::create_directories(at(std::string("models--org--m/snapshots/") + kOld));
  fs::create_symlink(outside.path() + "/stolen.safetensors",
                     at(std::string("models--org--m/snapshots/") + kOld + "/model.safetensors"));
  fs::create_symlink(
      "../../../../" + fs::path(outside.path()).filename().string() + "/stolen.safetensors",
      at(std::string("models--org--m/snapshots/") + kOld + "/other.safetensors"));
  ref("main", kOld);
  HfCache c = cache();
  auto snap = c.snapshot(*parse_hf_name("hf:org/m"));
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  for (const char* f : {"/model.safetensors", "/other.safetensors"}) {
    EXPECT_EQ(c.files().resolve(snap->dir + f).status().code(), ErrorCode::kForbidden) << f;
  }
  EXPECT_EQ(scan_repository(c.files(), snap->dir).status().code(), ErrorCode::kForbidden);
}

TEST(HfCacheDefault, FollowsTheHubsEnvironment) {
  const char* saved[3] = {std::getenv("HF_HUB_CACHE"), std::getenv("HF_HOME"), std::getenv("HOME")};
  const std::string keep[3] = {saved[0] ? saved[0] : "", saved[1] ? saved[1] : "",
                               saved[2] ? saved[2] : ""};
  ::setenv("HF_HUB_CACHE", "/srv/hub", 1);
  ::setenv("HF_HOME", "/srv/hf", 1);
  EXPECT_EQ(default_hf_cache(), "/srv/hub");
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(default_hf_cache(), "/srv/hf/hub");
  ::unsetenv("HF_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(default_hf_cache(), "/home/u/.cache/huggingface/hub");
  const char* vars[3] = {"HF_HUB_CACHE", "HF_HOME", "HOME"};
  for (int i = 0; i < 3; ++i) {
    if (saved[i]) {
      ::setenv(vars[i], keep[i].c_str(), 1);
    } else {
      ::unsetenv(vars[i]);
    }
  }
}

}  // namespace
}  // namespace modelpool::broker
