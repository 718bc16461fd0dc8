// File: tests/budget/tmpfs_test.cc
//
// The segment on a small filesystem (a 64 MiB tmpfs mounted for the test,
// passed as --segment-dir): the default budget is capped by its free space,
// and when the filesystem fills up a load is refused with pool_full — memory
// is reserved before it is written, so no SIGBUS — and the broker lives on.
// Needs root to mount; skipped otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "budget_util.hpp"
#include "modelpool/client.hpp"

namespace modelpool::testing {
namespace {

namespace fs = std::filesystem;

class SmallTmpfs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root; run as root to test";
    dir_ = (fs::temp_directory_path() /
            ("mp-tmpfs-" + std::to_string(::getpid()) + "-" + std::to_string(++counter_)))
               .string();
    fs::create_directories(dir_);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0755") != 0) {
      const int err = errno;
      ::rmdir(dir_.c_str());
      GTEST_SKIP() << "cannot mount a 64 MiB tmpfs on " << dir_ << ": " << std::strerror(err);
    }
    mounted_ = true;
  }

  void TearDown() override {
    if (broker_ && HasFailure()) {
      const int status = broker_->stop();
      std::cerr << "modelpoold wait status " << status << ", its log:\n" << broker_->stderr_text();
    }
    broker_.reset();  // stops the broker and removes its segment before the unmount
    if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }

  Broker& start_broker(std::vector<std::string> extra, bool default_memory) {
    extra.insert(extra.end(), {"--segment-dir", dir_});
    broker_.emplace(models_.path(), extra);
    broker_->capture_stderr(models_.path() + "/broker.log");
    broker_->use_default_memory(default_memory);
    broker_->start();
    return *broker_;
  }

  // Someone else fills the filesystem until `leave` bytes stay free.
  void fill_leaving(std::uint64_t leave) {
    const std::uint64_t fill = free_bytes() - leave;
    std::ofstream filler(dir_ + "/filler", std::ios::binary | std::ios::app);
    const std::string chunk(kMiB, '\x5a');
    for (std::uint64_t done = 0; done < fill; done += chunk.size()) {
      const std::uint64_t n = std::min<std::uint64_t>(chunk.size(), fill - done);
      filler.write(chunk.data(), static_cast<std::streamsize>(n));
    }
    filler.close();
    ASSERT_TRUE(filler.good()) << "could not write the filler";
    ASSERT_EQ(free_bytes(), leave);
  }

  std::uint64_t free_bytes() const {
    struct statvfs v {};
    EXPECT_EQ(::statvfs(dir_.c_str(), &v), 0);
    return static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
  }

  static inline int counter_ = 0;
  std::string dir_;
  bool mounted_ = false;
  ScratchDir models_;
  std::optional<Broker> broker_;
};

std::string code_of(const json& reply) {
  return reply.value("ok", true) ? "ok" : reply["error"]["code"].get<std::string>();
}

TEST_F(SmallTmpfs, DefaultBudgetIsCappedByTheFilesystemsFreeSpace) {
  Broker& broker = start_broker({}, /*default_memory=*/false);
  json stats = broker.admin("stats");
  const auto budget = stats["bytes_budget"].get<std::uint64_t>();
  EXPECT_LE(budget, 64 * kMiB);  // far below 70% of MemAvailable on any test machine
  EXPECT_GE(budget, 16 * kMiB);
  EXPECT_EQ(budget % (2 * kMiB), 0U);
  EXPECT_EQ(broker.admin("config")["config"]["memory"], budget);
  EXPECT_EQ(stats["segment_path"], dir_ + "/" + broker.pool() + ".segment");
  EXPECT_TRUE(fs::exists(broker.segment_path()));
}

TEST_F(SmallTmpfs, FullFilesystemIsPoolFullAndTheBrokerLivesOn) {
  const std::string big = read_file(models_.write_random("big", 12 * kMiB, 1));
  models_.write_random("small", 1 * kMiB, 2);
  Broker& broker = start_broker({"--memory", "48MiB"}, true);
  fill_leaving(4 * kMiB);  // the budget still has room, the filesystem not
  WorkerConn w(broker);
  json r = w.acquire("big");
  ASSERT_EQ(code_of(r), "pool_full") << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("filesystem full"), std::string::npos)
      << r.dump();
  // Nothing stays behind, and the broker serves on.
  EXPECT_EQ(broker.admin("health")["status"], "ok");
  json stats = broker.admin("stats");
  EXPECT_EQ(stats["bytes_used"], 0);
  EXPECT_EQ(stats["models"].size(), 0U);
  EXPECT_EQ(self_check_problems(broker), json::array());
  EXPECT_EQ(code_of(w.touch("small")), "ok");  // what fits still loads

  fs::remove(dir_ + "/filler");
  Client client = Client::connect(broker.worker_socket());
  Model m = client.acquire("big");
  ASSERT_EQ(m.size(), big.size());
  EXPECT_EQ(std::memcmp(m.bytes().data(), big.data(), big.size()), 0);
  EXPECT_EQ(broker.admin("stats")["load_failures"], 0);
}

// The last free bytes go to a model (it holds its 1 MiB of pages, not its
// 2 MiB extent). The catalog entry the broker then writes must not need a
// page of its own (it would be a SIGBUS).
TEST_F(SmallTmpfs, LastFreeBytesGoToAModelWithoutSigbus) {
  const std::string bytes = read_file(models_.write_random("small", 1 * kMiB, 3));
  models_.write_random("other", 1 * kMiB, 4);
  Broker& broker = start_broker({"--memory", "48MiB"}, true);
  fill_leaving(1 * kMiB);  // one model's pages
  Client client = Client::connect(broker.worker_socket());
  Model m = client.acquire("small");
  ASSERT_EQ(m.size(), bytes.size());
  EXPECT_EQ(std::memcmp(m.bytes().data(), bytes.data(), bytes.size()), 0);
  WorkerConn w(broker);
  json r = w.acquire("other");
  EXPECT_EQ(code_of(r), "pool_full") << r.dump();
  EXPECT_EQ(broker.admin("health")["status"], "ok");
  EXPECT_EQ(self_check_problems(broker), json::array());
  EXPECT_EQ(::kill(broker.pid(), 0), 0) << "the broker died";
}

}  // namespace
}  // namespace modelpool::testing
