// File: tests/store/loader_fault_test.cc
//
// The loader under injected faults (leveldb fault_injection_test style): a
// FileSystem whose SourceFile turns reads into errors, short reads or EOF,
// or changes the real file mid-load (in place: never served as a mix of two
// versions). Run on both engines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <vector>

#include "broker/store/file_system.hpp"
#include "broker/store/segment.hpp"
#include "tests/store/loader_test_util.hpp"

namespace modelpool::broker {
namespace {

constexpr std::size_t kChunk = 64 << 10;

// Called with (offset, buffer, len, result, path) for every read; returns the
// result the loader should see.
using ReadFault =
    std::function<ssize_t(std::uint64_t, char*, std::size_t, ssize_t, const std::string&)>;

class FaultySource final : public SourceFile {
 public:
  FaultySource(std::unique_ptr<SourceFile> real, std::string path, ReadFault fault)
      : SourceFile(::dup(real->fd()), real->direct()),
        path_(std::move(path)),
        fault_(std::move(fault)) {}
  ssize_t filter_read(std::uint64_t offset, char* buf, std::size_t len, ssize_t result) override {
    return fault_(offset, buf, len, result, path_);
  }

 private:
  std::string path_;
  ReadFault fault_;
};

class FaultyFileSystem final : public FileSystem {
 public:
  explicit FaultyFileSystem(ReadFault fault) : fault_(std::move(fault)) {}
  Result<std::unique_ptr<SourceFile>> open_source(const std::string& path, bool direct) override {
    auto real = default_file_system()->open_source(path, direct);
    if (!real.ok()) return real.status();
    return std::unique_ptr<SourceFile>(
        std::make_unique<FaultySource>(std::move(*real), path, fault_));
  }
  Result<layout::SourceIdentity> stat(const std::string& path) override {
    return default_file_system()->stat(path);
  }

 private:
  ReadFault fault_;
};

// (use_io_uring, direct_io)
class LoaderFaultTest : public testing::LoaderFixture,
                        public ::testing::WithParamInterface<std::tuple<bool, bool>> {
 protected:
  std::unique_ptr<Loader> loader(ReadFault fault) {
    Loader::Options o;
    o.use_io_uring = std::get<0>(GetParam());
    o.direct_io = std::get<1>(GetParam());
    o.chunk_bytes = kChunk;
    o.queue_depth = 4;
    return std::make_unique<Loader>(o, std::make_shared<FaultyFileSystem>(std::move(fault)));
  }
  static constexpr std::size_t kSize = 20 * kChunk + 999;
};

TEST_P(LoaderFaultTest, ReadErrorIsLoadFailedWithPathAndCause) {
  const std::string path = make_file("eio", kSize);
  auto l = loader([](std::uint64_t off, char*, std::size_t, ssize_t res, const std::string&) {
    return off >= 6 * kChunk ? -EIO : res;
  });
  auto r = load(*l, job(path, kSize, 0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
  EXPECT_NE(r.status().message().find("reading " + path), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("Input/output error"), std::string::npos);
}

TEST_P(LoaderFaultTest, ShortReadsAreResubmitted) {
  const std::string path = make_file("short", kSize, 8);
  auto l = loader([](std::uint64_t, char* buf, std::size_t, ssize_t res, const std::string&) {
    if (res <= 10000) return res;
    std::memset(buf + 10000, 0x5a, static_cast<std::size_t>(res) - 10000);  // never arrived
    return ssize_t{10000};                                                  // unaligned on purpose
  });
  expect_loaded(path, load(*l, job(path, kSize, 0)), 0);
}

TEST_P(LoaderFaultTest, TransientErrorsAreRetried) {
  const std::string path = make_file("again", kSize, 9);
  int left = 5;
  auto l = loader([&left](std::uint64_t, char*, std::size_t, ssize_t res, const std::string&) {
    return left-- > 0 ? -EINTR : res;
  });
  expect_loaded(path, load(*l, job(path, kSize, 0)), 0);
}

TEST_P(LoaderFaultTest, EarlyEndOfFileIsFileShrank) {
  const std::string path = make_file("eof", kSize);
  auto l = loader([](std::uint64_t off, char*, std::size_t, ssize_t res, const std::string&) {
    return off >= 9 * kChunk ? 0 : res;
  });
  auto r = load(*l, job(path, kSize, 0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
  EXPECT_NE(r.status().message().find("file shrank during load"), std::string::npos)
      << r.status().message();
}

TEST_P(LoaderFaultTest, FileTruncatedDuringLoadIsFileShrank) {
  const std::string path = make_file("trunc", kSize);
  bool cut = false;
  auto l = loader([&cut](std::uint64_t, char*, std::size_t, ssize_t res, const std::string& p) {
    if (!cut) cut = ::truncate(p.c_str(), 3 * kChunk + 5) == 0;
    return res;
  });
  auto r = load(*l, job(path, kSize, 0));
  ASSERT_TRUE(cut);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("file shrank"), std::string::npos) << r.status().message();
}

TEST_P(LoaderFaultTest, FileGrownDuringLoadFails) {
  const std::string path = make_file("grow", kSize);
  bool grown = false;
  auto l = loader([&grown](std::uint64_t, char*, std::size_t, ssize_t res, const std::string& p) {
    if (!grown) grown = ::truncate(p.c_str(), kSize + 4096) == 0;
    return res;
  });
  auto r = load(*l, job(path, kSize, 0));
  ASSERT_TRUE(grown);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("file grew during load"), std::string::npos)
      << r.status().message();
}

// Overwrites `len` bytes at `offset` of `path` with `byte` (the file keeps its size).
void overwrite(const std::string& path, std::uint64_t offset, std::size_t len, char byte) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  const std::vector<char> bytes(len, byte);
  EXPECT_EQ(::pwrite(fd, bytes.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
  ::close(fd);
}

// The identity the resolver would record for `path`.
layout::SourceIdentity identity_of(const std::string& path) {
  auto id = default_file_system()->stat(path);
  EXPECT_TRUE(id.ok()) << id.status().to_string();
  return id.ok() ? *id : layout::SourceIdentity{};
}

// Head and tail rewritten once the copy is half way: the old head is in the
// extent already, the new tail is still to come. Never served as that mix:
// mtime moved, so the bytes could not match the identity the pool records.
TEST_P(LoaderFaultTest, FileRewrittenInPlaceDuringLoadIsNeverAMix) {
  const std::string path = make_file("rewrite", kSize, 13);
  bool rewritten = false;
  auto l = loader(
      [&rewritten](std::uint64_t off, char*, std::size_t, ssize_t res, const std::string& p) {
        if (!rewritten && off >= 10 * kChunk) {
          rewritten = true;
          overwrite(p, 0, kChunk, 'H');
          overwrite(p, kSize - kChunk, kChunk, 'T');
        }
        return res;
      });
  LoadJob j = job(path, kSize, 0);
  j.source = identity_of(path);
  auto r = load(*l, std::move(j));
  ASSERT_TRUE(rewritten);
  ASSERT_FALSE(r.ok()) << "a file rewritten during its load was served";
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
  EXPECT_NE(r.status().message().find(path + ": file changed during the load"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("mtime_ns"), std::string::npos) << r.status().message();
}

// A rewrite that puts mtime back (rsync -t --inplace) keeps the recorded
// identity but moves ctime: the copy is redone and holds the new bytes only.
TEST_P(LoaderFaultTest, RewriteThatRestoresMtimeIsCopiedAgain) {
  const std::string path = make_file("restored", kSize, 14);
  const layout::SourceIdentity recorded = identity_of(path);
  int reads_seen = 0;
  auto l = loader([&](std::uint64_t off, char*, std::size_t, ssize_t res, const std::string& p) {
    if (++reads_seen == 1 && off == 0) {  // chunk 0 already holds the old head
      overwrite(p, 0, kChunk, 'H');
      overwrite(p, kSize - kChunk, kChunk, 'T');
      const timespec times[2] = {
          {0, UTIME_OMIT}, {recorded.mtime_ns / 1'000'000'000, recorded.mtime_ns % 1'000'000'000}};
      EXPECT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
    }
    return res;
  });
  LoadJob j = job(path, kSize, 0);
  j.source = recorded;
  auto r = load(*l, std::move(j));
  ASSERT_EQ(identity_of(path), recorded) << "the rewrite must leave the identity as it was";
  expect_loaded(path, r, 0);  // the new bytes, all of them
}

TEST_P(LoaderFaultTest, FileThatKeepsChangingFailsAfterBoundedRetries) {
  const std::string path = make_file("churn", kSize, 15);
  const layout::SourceIdentity recorded = identity_of(path);
  int changes = 0;
  auto l = loader([&](std::uint64_t off, char*, std::size_t, ssize_t res, const std::string& p) {
    if (off == 0) {  // every attempt: change ctime, put mtime back
      ++changes;
      const timespec times[2] = {
          {0, UTIME_OMIT}, {recorded.mtime_ns / 1'000'000'000, recorded.mtime_ns % 1'000'000'000}};
      EXPECT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
    }
    return res;
  });
  LoadJob j = job(path, kSize, 0);
  j.source = recorded;
  auto r = load(*l, std::move(j));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(changes, Loader::kMaxCopyAttempts);
  EXPECT_NE(r.status().message().find("changed during the load, 3 times"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("ctime_ns"), std::string::npos) << r.status().message();
}

// Changed between resolve and load: the recorded identity is already stale.
TEST_P(LoaderFaultTest, FileChangedBeforeTheCopyFails) {
  const std::string path = make_file("stale", kSize, 16);
  LoadJob j = job(path, kSize, 0);
  j.source = identity_of(path);
  j.source.mtime_ns -= 1'000'000'000;
  auto l = loader(
      [](std::uint64_t, char*, std::size_t, ssize_t res, const std::string&) { return res; });
  auto r = load(*l, std::move(j));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("file changed since it was checked"), std::string::npos)
      << r.status().message();
}

TEST_P(LoaderFaultTest, LoaderThreadRecoversAfterAFailure) {
  const std::string bad = make_file("bad", kSize);
  const std::string good = make_file("good", kSize, 4);
  auto l = loader([bad](std::uint64_t off, char*, std::size_t, ssize_t res, const std::string& p) {
    return p == bad && off > 0 ? -EIO : res;
  });
  EXPECT_FALSE(load(*l, job(bad, kSize, 0)).ok());
  expect_loaded(good, load(*l, job(good, kSize, 1)), 1);
}

// On hugetlbfs the reads land in a mapping of the extent: short reads still
// resume where they stopped, and a load that fails half way leaves, once
// its extent is released, neither pages nor reservations behind.
TEST_P(LoaderFaultTest, FaultsWhileReadingIntoHugetlbfs) {
  std::string why;
  Status status;
  auto huge = testing::HugetlbfsSegment::open(4 * kMiB, 8, &why, &status);
  if (!huge) GTEST_SKIP() << why;
  ASSERT_NE(huge->segment(), nullptr) << status.to_string();
  Segment& s = *huge->segment();
  const std::uint64_t front = testing::allocated_bytes(s.path());
  const std::uint64_t reserved = modelpool::testing::read_hugetlb_pool().reserved;
  auto reserve = [&s](std::uint64_t off, std::uint64_t len) { return s.reserve(off, len); };
  const std::size_t size = 40 * kChunk + 999;  // 2.5 MiB: two huge pages
  const std::uint64_t extent = 4 * kMiB;

  const std::string path = make_file("short-huge", size, 12);
  auto shorter = loader([](std::uint64_t, char* buf, std::size_t, ssize_t res, const std::string&) {
    if (res <= 10000) return res;
    std::memset(buf + 10000, 0x5a, static_cast<std::size_t>(res) - 10000);  // never arrived
    return ssize_t{10000};
  });
  auto r = load(*shorter, LoadJob{path, size, s.fd(), s.data_offset(), reserve, extent, {}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(testing::pread_all(s.fd(), s.data_offset(), size) == read_file(path));
  EXPECT_EQ(testing::allocated_bytes(s.path()), front + extent);
  s.release(s.data_offset(), extent);

  auto failing = loader([](std::uint64_t off, char*, std::size_t, ssize_t res, const std::string&) {
    return off >= 36 * kChunk ? -EIO : res;  // in the second huge page
  });
  r = load(*failing, LoadJob{path, size, s.fd(), s.data_offset(), reserve, extent, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed) << r.status().to_string();
  s.release(s.data_offset(), extent);  // what the broker does with a failed load's extent
  EXPECT_EQ(testing::allocated_bytes(s.path()), front);
  EXPECT_EQ(modelpool::testing::read_hugetlb_pool().reserved, reserved);
}

INSTANTIATE_TEST_SUITE_P(Engines, LoaderFaultTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "IoUring" : "Sync") +
                                  (std::get<1>(info.param) ? "Direct" : "Buffered");
                         });

}  // namespace
}  // namespace modelpool::broker
