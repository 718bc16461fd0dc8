// File: tests/hugepages/huge_pool_test.cc
//
// A pool on 2 MiB pages, once on a huge=always tmpfs and once on hugetlbfs
// (mounted for the test, passed as --segment-dir): the broker reports the
// page size, places extents on huge page boundaries, several worker
// processes read a model correctly through mappings the kernel really backs
// with huge pages (ShmemPmdMapped on tmpfs; KernelPageSize 2048 kB and the
// HugePages_ counters on hugetlbfs), the first acquire pre-faults them, and an
// eviction gives the huge pages back. Needs root; skipped otherwise.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <iostream>
#include <optional>
#include <ostream>
#include <vector>

#include "broker_fixture.hpp"
#include "huge_env.hpp"
#include "modelpool/client.hpp"

namespace modelpool::testing {
namespace {

constexpr std::uint64_t kModelBytes = 64 * kMiB;

}  // namespace

// How GoogleTest names the parameter in failure messages.
void PrintTo(HugeKind kind, std::ostream* os) { *os << to_string(kind); }

namespace {

class HugePool : public ::testing::TestWithParam<HugeKind> {
 protected:
  void SetUp() override {
    std::string why;
    // 160 MiB: a 96 MiB budget plus the segment's header and catalog (10 MiB).
    mount_ = mount_huge(GetParam(), 160 * kMiB, 80, &why);
    if (!mount_) GTEST_SKIP() << why;
    model_path_ = models_.write_random("m.bin", kModelBytes, 9);
    broker_.emplace(models_.path(),
                    std::vector<std::string>{"--segment-dir", mount_->path(), "--memory", "96MiB",
                                             "--log-level", "info"});
    broker_->capture_stderr(models_.path() + "/broker.log");
    broker_->start();
  }

  void TearDown() override {
    if (broker_ && HasFailure()) std::cerr << "modelpoold log:\n" << broker_->stderr_text();
    broker_.reset();  // stops the broker and removes the segment before the unmount
    mount_.reset();
  }

  Child start_worker(bool populate, bool hold) {
    std::vector<std::string> argv = {binary_path("tests/hugepages/mp_huge_worker"),
                                     "--socket",
                                     broker_->worker_socket(),
                                     "--model",
                                     "m.bin",
                                     "--verify",
                                     model_path_};
    if (populate) argv.emplace_back("--populate");
    if (hold) argv.emplace_back("--hold");
    return Child(argv);
  }

  static json report(Child& w) {
    auto line = w.read_line();
    return line ? json::parse(*line) : json{{"ok", false}, {"code", "no_output"}};
  }

  bool hugetlbfs() const { return GetParam() == HugeKind::kHugetlbfs; }

  // Every byte of the model's mapping is on a 2 MiB page.
  void expect_huge_mapping(const json& pages) const {
    constexpr std::uint64_t kModelKb = kModelBytes / 1024;
    if (hugetlbfs()) {
      EXPECT_EQ(pages["kernel_page_kb"], 2048) << pages.dump();
      EXPECT_EQ(pages["hugetlb_kb"], kModelKb) << pages.dump();
    } else {
      EXPECT_EQ(pages["pmd_mapped_kb"], kModelKb) << pages.dump();
      EXPECT_EQ(pages["rss_kb"], kModelKb) << pages.dump();
    }
  }

  HugeTestLock lock_;  // first: held until everything below is undone
  std::unique_ptr<ScratchMount> mount_;
  ScratchDir models_;
  std::string model_path_;
  std::optional<Broker> broker_;
};

// a - b of two page counts, signed: a counter that moved the wrong way
// must fail a check, not wrap around.
std::int64_t diff(std::uint64_t a, std::uint64_t b) {
  return static_cast<std::int64_t>(a) - static_cast<std::int64_t>(b);
}

constexpr std::int64_t kModelPages = static_cast<std::int64_t>(kModelBytes / kHugePage);

TEST_P(HugePool, BrokerReportsTheHugePageSizeInHelloStatsAndLog) {
  Client client = Client::connect(broker_->worker_socket());
  EXPECT_EQ(client.page_size(), kHugePage);
  json stats = broker_->admin("stats");
  EXPECT_EQ(stats["page_size"], kHugePage);
  EXPECT_EQ(stats["segment_path"], broker_->segment_path());
  EXPECT_NE(broker_->stderr_text().find("2.0 MiB pages"), std::string::npos)
      << broker_->stderr_text();
}

TEST_P(HugePool, SeveralWorkersReadTheModelThroughHugePages) {
  const HugetlbPool before_load = read_hugetlb_pool();
  std::vector<Child> workers;
  std::vector<HugetlbPool> pool_after;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(start_worker(/*populate=*/false, /*hold=*/true));
    json r = report(workers.back());
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    EXPECT_TRUE(r["file_ok"].get<bool>()) << "worker " << i << " read wrong bytes";
    EXPECT_EQ(r["size"], kModelBytes);
    EXPECT_EQ(r["page_size"], kHugePage);
    EXPECT_TRUE(r["aligned"].get<bool>()) << "the view does not start on a huge page boundary";
    expect_huge_mapping(r["after"]);
    pool_after.push_back(read_hugetlb_pool());
  }
  json stats = broker_->admin("stats");
  EXPECT_EQ(stats["loads"], 1);
  EXPECT_EQ(stats["hits"], 2);
  if (hugetlbfs()) {
    // The load took the model's pages from the kernel's pool, once: the
    // other workers map the same pages.
    EXPECT_GE(diff(before_load.free, pool_after[0].free), kModelPages);
    EXPECT_EQ(pool_after[2].free, pool_after[0].free);
  }
  for (auto& w : workers) {
    w.close_stdin();
    EXPECT_EQ(w.wait(), 0);
  }
}

TEST_P(HugePool, PopulateMapsEveryHugePageBeforeAcquireReturns) {
  Child warm = start_worker(false, false);  // loads the model
  ASSERT_TRUE(report(warm)["ok"].get<bool>());
  EXPECT_EQ(warm.wait(), 0);

  // On 2 MiB pages a process's first acquire of an extent populates it
  // without being asked (AcquireOptions::populate): cheaper than the faults.
  Child first = start_worker(/*populate=*/false, false);
  json r = report(first);
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  expect_huge_mapping(r["before"]);
  expect_huge_mapping(r["after"]);
  EXPECT_EQ(first.wait(), 0);

  Child eager = start_worker(/*populate=*/true, false);
  r = report(eager);
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(r["file_ok"].get<bool>());
  expect_huge_mapping(r["before"]);  // all there before the first touch
  EXPECT_EQ(eager.wait(), 0);
}

TEST_P(HugePool, ExtentsStartOnHugePageBoundaries) {
  // Odd sizes: the last huge page of each extent is partly past the model.
  const std::vector<std::pair<std::string, std::uint64_t>> models = {
      {"a.bin", 1}, {"b.bin", 3 * kMiB + 5}, {"c.bin", 2 * kMiB}, {"d.bin", 5 * kMiB - 1}};
  std::vector<std::string> files;
  for (std::uint32_t i = 0; i < models.size(); ++i) {
    files.push_back(read_file(models_.write_random(models[i].first, models[i].second, 20 + i)));
  }
  Client client = Client::connect(broker_->worker_socket());
  RawConn raw(broker_->worker_socket());
  for (std::size_t i = 0; i < models.size(); ++i) {
    const auto& [name, size] = models[i];
    json r = raw.request({{"op", "acquire"}, {"model", name}});
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    EXPECT_EQ(r["offset"].get<std::uint64_t>() % kHugePage, 0U) << name << ": " << r.dump();
    Model m = client.acquire(name);
    ASSERT_EQ(m.size(), size);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.bytes().data()) % kHugePage, 0U) << name;
    EXPECT_EQ(std::memcmp(m.bytes().data(), files[i].data(), size), 0) << name;
  }
}

TEST_P(HugePool, EvictionGivesTheHugePagesBack) {
  Child w = start_worker(false, false);
  ASSERT_TRUE(report(w)["ok"].get<bool>());
  ASSERT_EQ(w.wait(), 0);
  const std::uint64_t held = allocated_bytes(broker_->segment_path());
  const HugetlbPool loaded = read_hugetlb_pool();
  ASSERT_GE(held, kModelBytes);
  json ev = broker_->admin("evict", {{"model", "m.bin"}});
  ASSERT_TRUE(ev["ok"].get<bool>()) << ev.dump();
  EXPECT_LE(allocated_bytes(broker_->segment_path()), held - kModelBytes);
  if (hugetlbfs()) {
    EXPECT_GE(diff(read_hugetlb_pool().free, loaded.free), kModelPages);
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, HugePool, ::testing::Values(HugeKind::kTmpfs, HugeKind::kHugetlbfs),
                         [](const auto& info) { return to_string(info.param); });

}  // namespace
}  // namespace modelpool::testing
