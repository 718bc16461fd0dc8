// File: tests/integration/repository_change_test.cc
//
// The broker keeps the plan of a model of several files (which files, in
// which order, which commit) while what it was read from is unchanged: the
// repository's directory and index, the ref and snapshot of an hf: name. A
// change to any of them is seen by the next acquire. The plan is kept only
// for files older than the moment it was read, so each test first lets the
// clock pass the files' change times (a bounded wait on the clock, not on
// the broker).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <string>
#include <vector>

#include "broker_fixture.hpp"
#include "modelpool/client.hpp"
#include "repo_files.hpp"

namespace modelpool::testing {
namespace {

std::int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Returns once the clock is 100 ms past the latest change time of `paths`
// (at most about a second of waiting).
void let_the_clock_pass(const std::vector<std::string>& paths) {
  std::int64_t newest = 0;
  for (const std::string& p : paths) {
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
    newest = std::max(
        newest, static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec);
  }
  for (int i = 0; i < 200 && realtime_ns() < newest + 100'000'000; ++i) {
    const timespec step{0, 10'000'000};
    ::nanosleep(&step, nullptr);
  }
  ASSERT_GE(realtime_ns(), newest + 100'000'000);
}

std::vector<std::string> names_of(const Model& m) {
  std::vector<std::string> out;
  for (const FileInfo& f : m.files()) out.push_back(f.name);
  return out;
}

std::vector<std::string> tensor_names(const Model& m) {
  std::vector<std::string> out;
  for (const Tensor& t : m.tensors()) out.push_back(t.name);
  return out;
}

TEST(RepositoryChange, AFileAddedOrAnIndexRewrittenIsSeenByTheNextAcquire) {
  ScratchDir models;
  const std::string repo = models.path() + "/org/m/";
  put(repo + "a.safetensors", safetensors({{"a", 16}}, 1));
  put(repo + "b.safetensors", safetensors({{"b", 16}}, 2));
  put(repo + "config.json", "{}");
  let_the_clock_pass({repo, repo + "a.safetensors", repo + "b.safetensors"});
  Broker b(models.path());
  b.start();
  auto c = Client::connect(b.worker_socket());
  for (int i = 0; i < 2; ++i) {  // planned, then served from the kept plan
    Model m = c.acquire("org/m");
    EXPECT_EQ(names_of(m),
              (std::vector<std::string>{"a.safetensors", "b.safetensors", "config.json"}));
  }
  // A new shard: the directory changed.
  const std::string c_bytes = safetensors({{"c", 16}}, 3);
  put(repo + "c.safetensors", c_bytes);
  {
    Model m = c.acquire("org/m");
    EXPECT_EQ(tensor_names(m), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(as_string(m.tensor("c").data), tensor_bytes(c_bytes, "c"));
  }
  // An index, then the same index rewritten in place in another order.
  put(repo + "model.safetensors.index.json",
      R"({"weight_map": {"a": "a.safetensors", "c": "c.safetensors"}})");
  let_the_clock_pass({repo, repo + "model.safetensors.index.json"});
  for (int i = 0; i < 2; ++i) {
    Model m = c.acquire("org/m");
    EXPECT_EQ(tensor_names(m), (std::vector<std::string>{"a", "c"}));
  }
  {
    std::ofstream rewrite(repo + "model.safetensors.index.json", std::ios::trunc);
    rewrite << R"({"weight_map": {"c": "c.safetensors", "b": "b.safetensors"}})";
  }
  Model m = c.acquire("org/m");
  EXPECT_EQ(tensor_names(m), (std::vector<std::string>{"c", "b"}));
}

TEST(RepositoryChange, ARefThatMovesIsSeenByTheNextAcquire) {
  ScratchDir models, cache;
  const std::string repo = cache.path() + "/models--org--m";
  const std::string c1(40, '1'), c2(40, '2');
  put(repo + "/blobs/one", safetensors({{"w", 16}}, 1));
  put(repo + "/blobs/two", safetensors({{"w", 16}}, 2));
  for (const auto& [commit, blob] : {std::pair{c1, "one"}, std::pair{c2, "two"}}) {
    std::filesystem::create_directories(repo + "/snapshots/" + commit);
    std::filesystem::create_symlink(std::string("../../blobs/") + blob,
                                    repo + "/snapshots/" + commit + "/model.safetensors");
  }
  put(repo + "/refs/main", c1);
  let_the_clock_pass({repo + "/refs/main", repo + "/snapshots/" + c1});
  Broker b(models.path(), {"--hf-cache", cache.path()});
  b.start();
  auto c = Client::connect(b.worker_socket());
  for (int i = 0; i < 2; ++i) EXPECT_EQ(c.acquire("hf:org/m").commit(), c1);
  put(repo + "/refs/main", c2);  // written in place, as huggingface_hub does
  Model m = c.acquire("hf:org/m");
  EXPECT_EQ(m.commit(), c2);
  EXPECT_EQ(as_string(m.tensor("w").data), tensor_bytes(safetensors({{"w", 16}}, 2), "w"));
}

}  // namespace
}  // namespace modelpool::testing
