// File: tests/fault/segment_compat_test.cc
//
// A segment the broker cannot adopt — another layout version, a corrupt or
// truncated header, another pool's segment — is refused at start with one
// clear sentence that names the segment, what is wrong and --recreate, and is
// left untouched; --recreate discards it and starts an empty pool.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <functional>

#include "broker_fixture.hpp"
#include "fault_support.hpp"

namespace modelpool::fault {
namespace {

using testing::Broker;
using testing::ScratchDir;

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The first 4 KiB of a file (a segment is sparse and may be huge: never read all of it).
std::string header_bytes(const std::string& path) {
  std::string bytes(4096, '\0');
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const ssize_t n = fd < 0 ? 0 : ::pread(fd, bytes.data(), bytes.size(), 0);
  if (fd >= 0) ::close(fd);
  bytes.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return bytes;
}

void put(int fd, std::size_t offset, const void* p, std::size_t n) {
  ASSERT_EQ(::pwrite(fd, p, n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
}

class SegmentCompat : public ::testing::Test {
 protected:
  void SetUp() override {
    models_.write_random("m.bin", 3 << 20, 1);
    broker_.start();
    ASSERT_TRUE(broker_.admin("load", {{"model", "m.bin"}})["ok"].get<bool>());
    ASSERT_EQ(exit_code(broker_.stop(SIGTERM)), 0);  // keeps the segment
  }

  // Damages the stopped broker's segment, starts a broker on it and expects
  // a refusal naming `why`, then --recreate.
  void expect_refused_then_recreated(const std::function<void(int fd)>& damage,
                                     const std::string& why) {
    const std::string seg = broker_.segment_path();
    {
      const int fd = ::open(seg.c_str(), O_RDWR | O_CLOEXEC);
      ASSERT_GE(fd, 0);
      damage(fd);
      ::close(fd);
    }
    const std::string before = header_bytes(seg);
    auto [st, out] = testing::run_command(broker_.argv());
    EXPECT_EQ(exit_code(st), 1) << out;
    EXPECT_NE(out.find("segment " + seg), std::string::npos) << out;
    EXPECT_NE(out.find(why), std::string::npos) << out;
    EXPECT_NE(out.find("--recreate"), std::string::npos) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one sentence: " << out;
    EXPECT_EQ(header_bytes(seg), before) << "a refused segment is left as it was";

    Broker again(models_.path(), {"--recreate"}, broker_.pool());
    again.start();
    json stats = again.admin("stats");
    EXPECT_EQ(stats["models"].size(), 0U) << "nothing of the discarded segment is adopted";
    expect_fresh_pool(again);
  }

  static void expect_fresh_pool(const Broker& b) {
    Conn w(b.worker_socket());
    json r = *w.request({{"op", "acquire"}, {"model", "m.bin"}});
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    EXPECT_FALSE(r["cached"].get<bool>());
    EXPECT_TRUE(b.admin("selfcheck").value("consistent", false));
  }

  ScratchDir models_;
  Broker broker_{models_.path()};
};

TEST_F(SegmentCompat, AnotherLayoutVersionIsRefused) {
  expect_refused_then_recreated(
      [](int fd) {
        const std::uint32_t v = layout::kLayoutVersion + 1;
        put(fd, offsetof(layout::SegmentHeader, layout_version), &v, sizeof v);
      },
      "layout version " + std::to_string(layout::kLayoutVersion + 1));
}

TEST_F(SegmentCompat, CorruptMagicIsRefused) {
  expect_refused_then_recreated([](int fd) { put(fd, 0, "garbage!", 8); },
                                "not a modelpool segment");
}

TEST_F(SegmentCompat, CorruptGeometryIsRefused) {
  expect_refused_then_recreated(
      [](int fd) {
        const std::uint64_t huge = ~0ULL;
        put(fd, offsetof(layout::SegmentHeader, data_offset), &huge, sizeof huge);
      },
      "out of bounds");
}

TEST_F(SegmentCompat, TruncatedSegmentIsRefused) {
  expect_refused_then_recreated([](int fd) { ASSERT_EQ(::ftruncate(fd, 100), 0); },
                                "smaller than its header");
}

TEST_F(SegmentCompat, AnotherPoolsSegmentIsRefused) {
  expect_refused_then_recreated(
      [](int fd) {
        char name[64] = "someone-else";
        put(fd, offsetof(layout::SegmentHeader, pool_name), name, sizeof name);
      },
      "belongs to pool \"someone-else\"");
}

}  // namespace
}  // namespace modelpool::fault
