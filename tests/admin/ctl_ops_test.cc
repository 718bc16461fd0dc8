// File: tests/admin/ctl_ops_test.cc
//
// Every admin op through the modelpoolctl binary against the real broker,
// in both output modes: the human table/summary and --json, and exit 0.
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include "admin_support.hpp"

namespace modelpool::testing {
namespace {

class CtlOps : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.write_random("a.bin", 2 << 20, 1);  // whole extents (2 MiB)
    models_.write_random("dir/b.bin", 4 << 20, 2);
    broker_.start();
  }
  // Runs modelpoolctl; expects exit 0 and nothing on stderr.
  Outcome ok(std::vector<std::string> args) {
    Outcome o = ctl(broker_, args);
    EXPECT_EQ(o.code, 0) << o.out << o.err;
    EXPECT_EQ(o.err, "");
    return o;
  }
  json ok_json(std::vector<std::string> args) {
    args.push_back("--json");
    const Outcome o = ok(args);
    json j = o.parsed();
    EXPECT_TRUE(j.is_object()) << o.out;
    EXPECT_FALSE(j.contains("ok")) << "the envelope is not printed";
    return j;
  }

  ScratchDir models_;
  Broker broker_{models_.path()};
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(CtlOps, PoolDefaultsToTheEnvironment) {
  ::setenv("MODELPOOL_POOL", broker_.pool().c_str(), 1);
  const Outcome found = ctl({"--run-dir", broker_.run_dir(), "health"});
  ::setenv("MODELPOOL_POOL", "not/a/pool", 1);
  const Outcome bad = ctl({"--run-dir", broker_.run_dir(), "health"});
  ::setenv("MODELPOOL_POOL", "other-pool", 1);
  const Outcome flag = ctl({"--run-dir", broker_.run_dir(), "--pool", broker_.pool(), "health"});
  ::unsetenv("MODELPOOL_POOL");
  EXPECT_EQ(found.code, 0) << found.err;
  EXPECT_TRUE(has(found.out, "pool " + broker_.pool())) << found.out;
  EXPECT_EQ(bad.code, 2) << "a bad $MODELPOOL_POOL is a usage error: " << bad.err;
  EXPECT_EQ(flag.code, 0) << "--pool wins over $MODELPOOL_POOL: " << flag.err;
}

TEST_F(CtlOps, WatchPrintsAgainEveryIntervalCountTimes) {
  const Outcome o = ok({"stats", "--watch", "100ms", "--count", "3"});
  std::size_t prints = 0;
  for (std::size_t at = o.out.find("MODEL CACHE STATISTICS"); at != std::string::npos;
       at = o.out.find("MODEL CACHE STATISTICS", at + 1)) {
    ++prints;
  }
  EXPECT_EQ(prints, 3u) << o.out;
  EXPECT_EQ(o.out.find("\033["), std::string::npos) << "no screen clearing into a pipe";
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"health", "--watch", "1"},
                                              {"stats", "--count", "2"},
                                              {"stats", "--watch", "10ms"},
                                              {"list", "--watch", "1", "--count", "0"}}) {
    EXPECT_EQ(ctl(broker_, bad).code, 2) << bad[0] << " " << bad[1];
  }
}

TEST_F(CtlOps, HealthAndConfig) {
  const Outcome h = ok({"health"});
  EXPECT_TRUE(std::regex_match(h.out, std::regex("ok: pool " + broker_.pool() + ", pid " +
                                                 std::to_string(broker_.pid()) + ", up [0-9]+s\n")))
      << h.out;
  const json hj = ok_json({"health"});
  EXPECT_EQ(hj["status"], "ok");
  EXPECT_EQ(hj["pid"], broker_.pid());
  EXPECT_EQ(hj["pool"], broker_.pool());

  const Outcome c = ok({"config"});
  EXPECT_TRUE(std::regex_search(c.out, std::regex("^OPTION +VALUE\n"))) << c.out;
  EXPECT_TRUE(std::regex_search(c.out, std::regex("\nmodels +" + models_.path() + "\n"))) << c.out;
  EXPECT_TRUE(std::regex_search(c.out, std::regex("\nmemory +2147483648\n"))) << c.out;
  const json cj = ok_json({"config"});
  EXPECT_EQ(cj["config"]["name"], broker_.pool());
  EXPECT_EQ(cj["config"]["run-dir"], broker_.run_dir());
  EXPECT_EQ(cj["config"]["metrics-addr"], "");
  EXPECT_EQ(cj["config"]["eviction"], "lru");
}

TEST_F(CtlOps, LoadListAndStats) {
  const Outcome first = ok({"load", "a.bin"});
  EXPECT_TRUE(std::regex_match(
      first.out,
      std::regex(R"(loaded: a\.bin \(2\.0 MiB, generation 1, raw, checksum [0-9a-f]{16}\)\n)")))
      << first.out;
  EXPECT_EQ(ok({"load", "a.bin"}).out.rfind("already resident: a.bin (2.0 MiB", 0), 0U);
  const json b = ok_json({"load", "dir/b.bin", "--pin"});
  EXPECT_EQ(b["model"], "dir/b.bin");
  EXPECT_EQ(b["size"], 4 << 20);
  EXPECT_EQ(b["pinned"], true);
  EXPECT_EQ(b["cached"], false);

  RawConn worker(broker_.worker_socket());  // one hit, held
  ASSERT_TRUE(worker.request({{"op", "acquire"}, {"model", "a.bin"}})["ok"].get<bool>());

  const Outcome list = ok({"list"});
  EXPECT_TRUE(std::regex_search(
      list.out,
      std::regex(
          "^NAME +SIZE +REFS +GEN +STATE +PINNED +FORMAT +ACCESSES +LAST ACCESS +LOAD TIME\n")))
      << list.out;
  EXPECT_TRUE(std::regex_search(
      list.out, std::regex(R"(\na\.bin +2\.0 MiB +1 +1 +ready +no +raw +[0-9]+ +[0-9]+s )")))
      << list.out;
  EXPECT_TRUE(
      std::regex_search(list.out, std::regex(R"(\ndir/b\.bin +4\.0 MiB +0 +1 +ready +yes +raw )")))
      << list.out;
  const json lj = ok_json({"list"});
  EXPECT_EQ(lj["total"], 2);
  ASSERT_EQ(lj["models"].size(), 2U);

  const Outcome stats = ok({"stats"});
  for (const char* line : {"MODEL CACHE STATISTICS\n=====", "Hit Rate: 100.0% (1/1 requests)",
                           "Memory: 6.0 MiB used of 2.0 GiB budget", "Clients: 2", "Handles: 1",
                           "Evictions: 0", "Pool: "}) {
    EXPECT_TRUE(has(stats.out, line)) << line << "\n" << stats.out;
  }
  EXPECT_TRUE(std::regex_search(
      stats.out, std::regex(R"(Loads: 2 \(6\.0 MiB in [0-9.]+ m?s, [0-9.]+ GB/s\))")))
      << stats.out;
  EXPECT_TRUE(std::regex_search(
      stats.out, std::regex(R"(Host: [0-9.]+ [KMGT]iB available of [0-9.]+ [KMGT]iB)")))
      << stats.out;
  EXPECT_TRUE(std::regex_search(stats.out, std::regex("Uptime: [0-9]+[smhd]\n"))) << stats.out;
  EXPECT_TRUE(has(stats.out, "\nNAME ")) << "the model table follows the summary";

  const json sj = ok_json({"stats"});
  for (const char* f : {"uptime_s", "mem_total", "mem_available", "hits", "misses", "hit_rate",
                        "loads", "bytes_loaded", "load_seconds", "evictions", "bytes_used",
                        "bytes_budget", "largest_free_extent", "clients", "models"}) {
    EXPECT_TRUE(sj.contains(f)) << f;
  }
  EXPECT_EQ(sj["hits"], 1);
  EXPECT_EQ(sj["misses"], 0);
  EXPECT_EQ(sj["hit_rate"], 1.0);
  EXPECT_EQ(sj["loads"], 2);
  EXPECT_EQ(sj["bytes_loaded"], 6 << 20);
  EXPECT_GT(sj["mem_total"].get<std::uint64_t>(), sj["mem_available"].get<std::uint64_t>());
  EXPECT_EQ(sj["models"].size(), 2U);
}

TEST_F(CtlOps, PinUnpinEvictAndClear) {
  ok({"load", "a.bin"});
  ok({"load", "dir/b.bin"});
  EXPECT_EQ(ok({"pin", "a.bin"}).out, "a.bin is pinned\n");
  const json pj = ok_json({"pin", "dir/b.bin"});
  EXPECT_EQ(pj, (json{{"model", "dir/b.bin"}, {"pinned", true}}));
  EXPECT_EQ(ok({"clear"}).out, "evicted 0 models (0 B)\n");  // both pinned

  EXPECT_EQ(ok({"unpin", "a.bin"}).out, "a.bin is not pinned\n");
  EXPECT_EQ(ok({"evict", "a.bin"}).out, "evicted: a.bin (2.0 MiB)\n");
  EXPECT_EQ(ok_json({"unpin", "dir/b.bin"})["pinned"], false);
  EXPECT_EQ(ok_json({"clear"}), (json{{"evicted", 1}, {"bytes", 4 << 20}}));
  EXPECT_EQ(ok({"list"}).out, "(no models in the pool)\n");

  ok({"load", "a.bin"});
  EXPECT_EQ(ok_json({"evict", "a.bin"}), (json{{"model", "a.bin"}, {"bytes", 2 << 20}}));
  ok({"load", "a.bin"});
  EXPECT_EQ(ok({"clear"}).out, "evicted 1 model (2.0 MiB)\n");
  EXPECT_TRUE(has(ok({"stats"}).out, "Evictions: 4 (10.0 MiB)"));
  EXPECT_EQ(ok({"selfcheck"}).out, "selfcheck: ok\n");
  const json check = ok_json({"selfcheck"});
  EXPECT_EQ(check["consistent"], true);
  EXPECT_EQ(check["problems"], json::array());
}

TEST_F(CtlOps, SocketOptionReachesTheSameBroker) {
  const Outcome o = ctl({"--socket", broker_.admin_socket(), "health", "--json"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.parsed()["pool"], broker_.pool());
}

}  // namespace
}  // namespace modelpool::testing
