// File: tests/hugepages/script_test.cc
//
// scripts/hugepages.sh: `up` mounts a huge=always tmpfs, or adds huge pages
// to the kernel's pool and mounts hugetlbfs, sized from --size; `down`
// unmounts and gives the pages back, leaving nr_hugepages as it was. A
// mount that still holds files is not torn down without --force. Needs
// root; skipped otherwise, and when the script says the host cannot (3).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "broker_fixture.hpp"
#include "huge_env.hpp"

namespace modelpool::testing {
namespace {

namespace fs = std::filesystem;

// The options of the mount on `dir` in /proc/mounts, or "" when none.
std::string mount_options(const std::string& dir) {
  std::ifstream in("/proc/mounts");
  std::string source, target, type, options, rest;
  while (in >> source >> target >> type >> options && std::getline(in, rest)) {
    if (target == dir) return type + " " + options;
  }
  return "";
}

class HugepagesScript : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "scripts/hugepages.sh needs root";
    dir_ = state_.path() + "/mnt";
  }

  // Tears down whatever a failed test left, so the machine stays as it was.
  void TearDown() override {
    if (!mount_options(dir_).empty()) run({"down", "--dir", dir_, "--force"});
  }

  std::pair<int, std::string> run(const std::vector<std::string>& args) {
    ScriptResult r = run_hugepages_sh(state_.path() + "/state", args);
    return {r.status, std::move(r.output)};
  }

  // `up`; skips the test when the script says the host cannot (exit 3).
  // The caller returns unless ready().
  void up(const std::string& kind, const std::string& size) {
    auto [rc, out] = run({"up", "--size", size, "--kind", kind, "--dir", dir_});
    if (rc == 3) GTEST_SKIP() << "hugepages.sh up: " << out;
    ASSERT_EQ(rc, 0) << out;
  }
  bool ready() const { return !IsSkipped() && !HasFailure(); }

  HugeTestLock lock_;
  ScratchDir state_;
  std::string dir_;
};

TEST_F(HugepagesScript, TmpfsUpMountsHugeAlwaysAndDownUnmounts) {
  const std::uint64_t nr_before = read_hugetlb_pool().total;
  up("tmpfs", "64M");
  if (!ready()) return;
  const std::string opts = mount_options(dir_);
  EXPECT_EQ(opts.rfind("tmpfs ", 0), 0U) << opts;
  EXPECT_NE(opts.find("size=65536k"), std::string::npos) << opts;
  EXPECT_NE(opts.find("huge=always"), std::string::npos) << opts;
  EXPECT_EQ(read_hugetlb_pool().total, nr_before);
  auto [rc, out] = run({"down", "--dir", dir_});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(mount_options(dir_), "");
  EXPECT_FALSE(fs::exists(dir_)) << "up created the directory, down removes it";
}

TEST_F(HugepagesScript, HugetlbfsUpReservesPagesAndDownRestoresTheCount) {
  const std::uint64_t nr_before = read_hugetlb_pool().total;
  up("hugetlbfs", "32M");
  if (!ready()) return;
  EXPECT_EQ(read_hugetlb_pool().total, nr_before + 16);
  const std::string opts = mount_options(dir_);
  EXPECT_EQ(opts.rfind("hugetlbfs ", 0), 0U) << opts;
  EXPECT_NE(opts.find("pagesize=2M"), std::string::npos) << opts;
  EXPECT_NE(opts.find("size=33554432"), std::string::npos) << opts;
  auto [rc, out] = run({"down", "--dir", dir_});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(mount_options(dir_), "");
  EXPECT_EQ(read_hugetlb_pool().total, nr_before);
}

TEST_F(HugepagesScript, DownTakesBackOnlyItsOwnPagesWhenOthersChangedThePool) {
  const std::uint64_t nr_before = read_hugetlb_pool().total;
  up("hugetlbfs", "16M");
  if (!ready()) return;
  std::string why;
  // Someone else, after up: 4 more pages, for a mount of their own.
  auto others = ScratchMount::hugetlbfs(/*bytes=*/0, 4, &why);
  if (!others) GTEST_SKIP() << why;
  auto [rc, out] = run({"down", "--dir", dir_});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(read_hugetlb_pool().total, nr_before + 4) << out;
  others.reset();
  EXPECT_EQ(read_hugetlb_pool().total, nr_before);
}

TEST_F(HugepagesScript, DownRefusesWhileFilesRemainUnlessForced) {
  up("tmpfs", "8M");
  if (!ready()) return;
  std::ofstream(dir_ + "/pool.segment") << "x";
  auto [rc, out] = run({"down", "--dir", dir_});
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("pool.segment"), std::string::npos) << out;
  EXPECT_NE(mount_options(dir_), "") << "down unmounted a filesystem that held a segment";
  auto forced = run({"down", "--dir", dir_, "--force"});
  EXPECT_EQ(forced.first, 0) << forced.second;
  EXPECT_EQ(mount_options(dir_), "");
}

TEST_F(HugepagesScript, BadUsageAndUnknownDirectoriesAreErrors) {
  EXPECT_EQ(run({"up", "--size", "lots", "--kind", "tmpfs", "--dir", dir_}).first, 2);
  EXPECT_EQ(run({"up", "--size", "8M", "--kind", "ramfs", "--dir", dir_}).first, 2);
  EXPECT_EQ(run({"down", "--dir", dir_}).first, 1);  // never set up
  EXPECT_EQ(mount_options(dir_), "");
}

}  // namespace
}  // namespace modelpool::testing
