// File: tests/hugepages/huge_budget_test.cc
//
// The budget on hugetlbfs, where statfs knows only the mount's size= limit
// (and reports 0 free without one) while the pages come from the kernel's
// pool: a budget that does not fit in the free huge pages is refused at
// start with the numbers, the default budget takes what the mount can get,
// and a restarted broker counts the pages its own segment already holds.
// Needs root; skipped otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "broker_fixture.hpp"
#include "huge_env.hpp"

namespace modelpool::testing {
namespace {

// Pages of the segment's header and catalog with the default catalog (16384
// entries): the first extent starts at 10 MiB.
constexpr std::uint64_t kFrontPages = 5;

class HugetlbfsBudget : public ::testing::Test {
 protected:
  // Adds `pages` to the kernel's pool and mounts hugetlbfs (size= `limit`
  // bytes, 0: none). Skips the test when the host cannot.
  void mount(std::uint64_t pages, std::uint64_t limit) {
    std::string why;
    mount_ = mount_huge(HugeKind::kHugetlbfs, limit, pages, &why);
    if (!mount_) GTEST_SKIP() << why;
  }

  // Starts modelpoold on the mount with `extra`; returns the output of a
  // broker that refused to start, or nullopt once it serves.
  std::optional<std::string> start(std::vector<std::string> extra) {
    extra.insert(extra.end(), {"--segment-dir", mount_->path()});
    broker_.emplace(models_.path(), extra);
    broker_->use_default_memory(false);
    broker_->capture_stderr(models_.path() + "/broker.log");
    try {
      broker_->start();
      return std::nullopt;
    } catch (const std::exception&) {
      return broker_->stderr_text();
    }
  }

  void TearDown() override {
    broker_.reset();
    mount_.reset();
  }

  HugeTestLock lock_;
  std::unique_ptr<ScratchMount> mount_;
  ScratchDir models_;
  std::optional<Broker> broker_;
};

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "no \"" << part << "\" in: " << text;
}

TEST_F(HugetlbfsBudget, BudgetLargerThanTheFreeHugePagesIsRefusedWithTheNumbers) {
  mount(16, /*limit=*/0);
  if (IsSkipped()) return;
  const std::uint64_t have = read_hugetlb_pool().available();  // 16, or more if others left some
  // As many pages as are free, for the budget alone: the header and catalog
  // do not fit any more.
  auto refused = start({"--memory", std::to_string(have * kHugePage)});
  ASSERT_TRUE(refused) << "modelpoold started with a budget of all " << have
                       << " free huge pages and no room for its catalog";
  const std::string& text = *refused;
  expect_contains(text, "does not fit in the free huge pages of " + mount_->path());
  expect_contains(text, "the pool needs " + std::to_string(have + kFrontPages) +
                            " pages of 2.0 MiB (" + std::to_string(have) + " for the budget, " +
                            std::to_string(kFrontPages) + " for the segment's header and catalog)");
  expect_contains(text, "can get " + std::to_string(have) + " (the kernel's pool has " +
                            std::to_string(have) +
                            " free and unreserved, the mount has no size= "
                            "limit)");
  expect_contains(text, "add at least " + std::to_string(kFrontPages) + " more huge pages");
  expect_contains(text, "nr_hugepages");
}

TEST_F(HugetlbfsBudget, SizeLimitOfTheMountBindsTheBudget) {
  mount(32, /*limit=*/16 * kMiB);  // 8 pages under the limit, at least 32 in the pool
  if (IsSkipped()) return;
  auto refused = start({"--memory", "32MiB"});
  ASSERT_TRUE(refused) << "modelpoold started with 32 MiB in a 16 MiB hugetlbfs";
  expect_contains(*refused, "the mount's size= limit leaves 8)");
  expect_contains(*refused, "add at least " + std::to_string(16 + kFrontPages - 8) +
                                " more pages to the mount's size= (mount -o remount,size=");
}

// Regression: statfs of a hugetlbfs without size= says 0 bytes free, and the
// broker used to refuse every budget there.
TEST_F(HugetlbfsBudget, DefaultBudgetTakesTheFreeHugePagesOfAMountWithoutLimit) {
  mount(32, /*limit=*/0);
  if (IsSkipped()) return;
  const std::uint64_t have = read_hugetlb_pool().available();
  ASSERT_FALSE(start({})) << broker_->stderr_text();
  json stats = broker_->admin("stats");
  EXPECT_EQ(stats["bytes_budget"], (have - kFrontPages) * kHugePage);
  EXPECT_EQ(stats["page_size"], kHugePage);
}

TEST_F(HugetlbfsBudget, ABudgetThatFitsExactlyStartsAndFillsUp) {
  mount(16, /*limit=*/0);
  if (IsSkipped()) return;
  const std::uint64_t budget = (read_hugetlb_pool().available() - kFrontPages) * kHugePage;
  const std::string file = read_file(models_.write_random("m.bin", budget, 5));
  ASSERT_FALSE(start({"--memory", std::to_string(budget)})) << broker_->stderr_text();
  RawConn w(broker_->worker_socket());
  json r = w.request({{"op", "acquire"}, {"model", "m.bin"}});
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(read_hugetlb_pool().available(), 0U);
}

// Someone else takes the free huge pages after the broker started: a load
// finds none for its extent. That is pool_full (the mapping of the extent
// reserves its pages, so nothing ever faults on a page that is not there),
// the broker lives on, and the load succeeds once the pages are back.
TEST_F(HugetlbfsBudget, PagesTakenByOthersAfterStartMakeALoadPoolFull) {
  mount(16, /*limit=*/0);
  if (IsSkipped()) return;
  const std::uint64_t budget = (read_hugetlb_pool().available() - kFrontPages) * kHugePage;
  const std::string file = read_file(models_.write_random("m.bin", 4 * kMiB + 12345, 7));
  ASSERT_FALSE(start({"--memory", std::to_string(budget)})) << broker_->stderr_text();
  const std::string thief = mount_->path() + "/someone-else";
  {
    const int fd = ::open(thief.c_str(), O_CREAT | O_RDWR, 0600);
    ASSERT_GE(fd, 0);
    const auto all = static_cast<off_t>(read_hugetlb_pool().available() * kHugePage);
    ASSERT_EQ(::fallocate(fd, 0, 0, all), 0) << std::strerror(errno);
    ::close(fd);
  }
  ASSERT_EQ(read_hugetlb_pool().available(), 0U);
  RawConn w(broker_->worker_socket());
  json r = w.request({{"op", "acquire"}, {"model", "m.bin"}});
  ASSERT_FALSE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["error"]["code"], "pool_full") << r.dump();
  EXPECT_TRUE(broker_->admin("health")["ok"].get<bool>());
  EXPECT_TRUE(broker_->admin("list")["models"].empty());
  ASSERT_EQ(::unlink(thief.c_str()), 0);
  r = w.request({{"op", "acquire"}, {"model", "m.bin"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["size"], file.size());
  EXPECT_TRUE(broker_->admin("selfcheck").value("consistent", false));
}

// A restarted broker adopts its segment: the pages that segment holds are
// the pool's own, not missing.
TEST_F(HugetlbfsBudget, RestartCountsThePagesItsSegmentHolds) {
  mount(24, /*limit=*/0);
  if (IsSkipped()) return;
  const std::uint64_t budget = (read_hugetlb_pool().available() - kFrontPages) * kHugePage;
  models_.write_random("m.bin", 16 * kMiB, 6);
  ASSERT_FALSE(start({"--memory", std::to_string(budget)})) << broker_->stderr_text();
  {
    RawConn w(broker_->worker_socket());
    ASSERT_TRUE(w.request({{"op", "acquire"}, {"model", "m.bin"}})["ok"].get<bool>());
  }
  ASSERT_EQ(broker_->stop(), 0);  // keeps the segment (no --remove-on-exit)
  broker_->start();
  json list = broker_->admin("list");
  ASSERT_EQ(list["models"].size(), 1U) << list.dump();
  EXPECT_EQ(broker_->admin("stats")["loads"], 0);  // adopted, not reloaded
}

}  // namespace
}  // namespace modelpool::testing
