// File: tests/store/loader_test.cc
//
// The loader on real files and a real segment: exact bytes and XXH3 for
// sizes around chunk boundaries, with both engines and several queue depths;
// empty files; O_DIRECT with an unaligned tail; many concurrent jobs; and
// what happens to queued jobs when the loader stops.
#include "broker/store/loader.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/store/loader_test_util.hpp"

namespace modelpool::broker {
namespace {

constexpr std::size_t kChunk = 64 << 10;  // the smallest chunk: many chunks per file

using LoaderTest = testing::LoaderFixture;

// (use_io_uring, queue_depth)
class LoaderEngineTest : public testing::LoaderFixture,
                         public ::testing::WithParamInterface<std::tuple<bool, unsigned>> {
 protected:
  Loader::Options options() const {
    Loader::Options o;
    o.use_io_uring = std::get<0>(GetParam());
    o.queue_depth = std::get<1>(GetParam());
    o.chunk_bytes = kChunk;
    return o;
  }
};

TEST_P(LoaderEngineTest, CopiesExactBytesAndChecksumAroundChunkBoundaries) {
  Loader loader(options());
  const std::size_t sizes[] = {
      1, 4095, 4096, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk, 7 * kChunk + 4097, 5 * kMiB + 123};
  unsigned index = 0;
  for (std::size_t size : sizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string path = make_file("m" + std::to_string(index), size, size);
    auto r = load(loader, job(path, size, index));
    expect_loaded(path, r, index);
    if (r.ok()) {
      EXPECT_EQ(r->io_uring, std::get<0>(GetParam()));
      EXPECT_FALSE(r->direct_io);
      EXPECT_GT(r->seconds, 0.0);
    }
    ++index;
  }
}

// With a reserve hook, the copy's writes allocate the pages they fill and the
// loader reserves the rest of the footprint it is given (past the file's last
// 4 KiB) after them: here a footprint of one 2 MiB-page-sized extent, as on a
// huge-page pool, all held when the load is done.
TEST_P(LoaderEngineTest, SecuresTheWholeFootprintWhileItLoads) {
  Loader loader(options());
  const std::size_t size = 7 * kChunk + 4097;
  const std::string path = make_file("reserved", size, 7);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  std::mutex mu;
  LoadJob j{path,
            size,
            segment_->fd(),
            extent(0),
            [&](std::uint64_t off, std::uint64_t len) {
              {
                std::lock_guard lock(mu);
                calls.emplace_back(off, len);
              }
              return segment_->reserve(off, len);
            },
            kExtent,
            {}};
  auto r = load(loader, std::move(j));
  expect_loaded(path, r, 0);
  std::lock_guard lock(mu);
  const std::uint64_t written = (size + 4095) / 4096 * 4096;
  ASSERT_EQ(calls.size(), 1U);
  EXPECT_EQ(calls[0].first, extent(0) + written);
  EXPECT_EQ(calls[0].second, kExtent - written);
  auto held = segment_->data_bytes_held();
  ASSERT_TRUE(held.ok()) << held.status().to_string();
  EXPECT_EQ(*held, kExtent);
}

TEST_P(LoaderEngineTest, AFailedReservationFailsTheLoadWithItsError) {
  Loader loader(options());
  const std::string path = make_file("nospace", 3 * kChunk, 8);
  LoadJob j{path,
            3 * kChunk,
            segment_->fd(),
            extent(0),
            [](std::uint64_t, std::uint64_t) -> Status {
              return error(ErrorCode::kPoolFull, "filesystem full");
            },
            kExtent,
            {}};
  auto r = load(loader, std::move(j));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPoolFull) << r.status().to_string();
  // The loader is fine afterwards.
  const std::string again = make_file("again", kChunk + 1, 9);
  expect_loaded(again, load(loader, job(again, kChunk + 1, 1)), 1);
}

TEST_P(LoaderEngineTest, EmptyFileHasTheEmptyChecksum) {
  Loader loader(options());
  const std::string path = make_file("empty", 0);
  auto r = load(loader, LoadJob{path, 0, segment_->fd(), extent(0), {}, 0, {}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->bytes, 0U);
  EXPECT_EQ(r->checksum, XXH3_64bits(nullptr, 0));
}

TEST_P(LoaderEngineTest, DirectIoWithAnUnalignedTail) {
  Loader::Options o = options();
  o.direct_io = true;
  Loader loader(o);
  const std::size_t size = 5 * kChunk + 1234;
  const std::string path = make_file("direct", size, 99);
  auto r = load(loader, job(path, size, 0));
  if (r.ok() && !r->direct_io) GTEST_SKIP() << src_dir_.path() << " refuses O_DIRECT";
  expect_loaded(path, r, 0);
}

INSTANTIATE_TEST_SUITE_P(Engines, LoaderEngineTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(1U, 4U)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "IoUring" : "Sync") +
                                  "Depth" + std::to_string(std::get<1>(info.param));
                         });

// A source whose file was cut short after the caller's size check: the real
// file is truncated as it is opened, and its first version() still answers
// what statx said before, so the copy itself runs into the end of the file.
class CutSource final : public SourceFile {
 public:
  CutSource(std::unique_ptr<SourceFile> real, FileVersion claimed)
      : SourceFile(::dup(real->fd()), real->direct()), claimed_(claimed) {}
  Result<FileVersion> version() override {
    if (!used_) {
      used_ = true;
      return claimed_;
    }
    return SourceFile::version();
  }

 private:
  FileVersion claimed_;
  bool used_ = false;
};

class CuttingFileSystem final : public FileSystem {
 public:
  CuttingFileSystem(std::string victim, std::uint64_t cut_to)
      : victim_(std::move(victim)), cut_to_(cut_to) {}
  Result<std::unique_ptr<SourceFile>> open_source(const std::string& path, bool direct) override {
    auto real = default_file_system()->open_source(path, direct);
    if (!real.ok() || path != victim_) return real;
    auto claimed = (*real)->version();
    if (!claimed.ok()) return claimed.status();
    if (::truncate(path.c_str(), static_cast<off_t>(cut_to_)) != 0) {
      return error(ErrorCode::kInternal, "truncate " + path);
    }
    return std::unique_ptr<SourceFile>(std::make_unique<CutSource>(std::move(*real), *claimed));
  }
  Result<layout::SourceIdentity> stat(const std::string& path) override {
    return default_file_system()->stat(path);
  }

 private:
  std::string victim_;
  std::uint64_t cut_to_;
};

// Both engines report a real file that ends under the copy as "file shrank",
// whether the end falls on a chunk boundary or not, and load the next file.
TEST_P(LoaderEngineTest, AFileCutShortUnderTheCopyIsFileShrank) {
  const std::size_t size = 9 * kChunk + 100;
  for (const std::uint64_t cut :
       {std::uint64_t{0}, std::uint64_t{3 * kChunk}, std::uint64_t{5 * kChunk + 4096 + 17}}) {
    SCOPED_TRACE("cut to " + std::to_string(cut));
    const std::string path = make_file("cut" + std::to_string(cut), size, cut + 1);
    Loader loader(options(), std::make_shared<CuttingFileSystem>(path, cut));
    auto r = load(loader, job(path, size, 0));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
    EXPECT_NE(r.status().message().find("file shrank during load"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
    // The loader still works.
    const std::string again = make_file("after" + std::to_string(cut), kChunk + 3, cut + 2);
    expect_loaded(again, load(loader, job(again, kChunk + 3, 1)), 1);
  }
}

TEST_F(LoaderTest, DefaultOptionsLoadAFileLargerThanOneChunk) {
  Loader loader(Loader::Options{});
  const std::size_t size = 7 * kMiB + 77;  // 4 MiB chunks: one full, one partial
  const std::string path = make_file("big", size, 5);
  expect_loaded(path, load(loader, job(path, size, 0)), 0);
}

TEST_F(LoaderTest, ManyConcurrentJobs) {
  Loader::Options o;
  o.threads = 2;
  o.chunk_bytes = kChunk;
  Loader loader(o);
  constexpr unsigned kJobs = 24;
  std::vector<std::string> paths;
  std::vector<Result<LoadResult>> results(kJobs,
                                          Result<LoadResult>(error(ErrorCode::kInternal, "")));
  std::mutex mu;
  std::condition_variable cv;
  unsigned done = 0;
  for (unsigned i = 0; i < kJobs; ++i) {
    const std::size_t size = (i % 5 == 0) ? 0 : i * 97 * 1024 + i;
    paths.push_back(make_file("c" + std::to_string(i), size, i));
    loader.submit(job(paths.back(), size, i), [&, i](Result<LoadResult> r) {
      std::lock_guard<std::mutex> lock(mu);
      results[i] = std::move(r);
      ++done;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == kJobs; });
  }
  for (unsigned i = 0; i < kJobs; ++i) {
    SCOPED_TRACE("job " + std::to_string(i));
    expect_loaded(paths[i], results[i], i);
  }
}

TEST_F(LoaderTest, StoppingAnswersEveryQueuedJobOnce) {
  constexpr unsigned kJobs = 16;
  const std::string path = make_file("q", 2 * kMiB, 3);
  std::mutex mu;
  unsigned calls = 0, ok = 0, shutting_down = 0;
  {
    Loader loader(Loader::Options{});
    for (unsigned i = 0; i < kJobs; ++i) {
      loader.submit(job(path, 2 * kMiB, i), [&](Result<LoadResult> r) {
        std::lock_guard<std::mutex> lock(mu);
        ++calls;
        if (r.ok()) ++ok;
        if (r.status().code() == ErrorCode::kShuttingDown) ++shutting_down;
      });
    }
  }  // joins: running jobs finish, queued ones are answered kShuttingDown
  EXPECT_EQ(calls, kJobs);
  EXPECT_EQ(ok + shutting_down, kJobs);
}

// hugetlbfs refuses write(): the loader reads straight into a mapping of
// the extent there, and the reads' faults allocate its pages. Both engines,
// buffered and O_DIRECT (whose rounded-up last read stays in the extent),
// with `reserve` taking the rest of the extent; then a mapping that finds
// too few free huge pages is kPoolFull and allocates nothing.
TEST_F(LoaderTest, LoadsIntoHugetlbfsThroughAMapping) {
  std::string why;
  Status status;
  auto huge = testing::HugetlbfsSegment::open(8 * kMiB, 12, &why, &status);
  if (!huge) GTEST_SKIP() << why;
  ASSERT_NE(huge->segment(), nullptr) << status.to_string();
  Segment& s = *huge->segment();
  EXPECT_TRUE(s.hugetlbfs());
  EXPECT_EQ(s.page_size(), 2 * kMiB);
  const std::uint64_t front = testing::allocated_bytes(s.path());
  const std::uint64_t extent = 6 * kMiB;  // one page more than the file needs
  const std::size_t size = 3 * kMiB + 4321;
  const std::string path = make_file("huge", size, 21);
  const std::vector<char> want = read_file(path);
  auto reserve = [&s](std::uint64_t off, std::uint64_t len) { return s.reserve(off, len); };
  for (bool uring : {true, false}) {
    for (bool direct : {false, true}) {
      SCOPED_TRACE(std::string(uring ? "io_uring" : "sync") + (direct ? ", O_DIRECT" : ""));
      Loader::Options o;
      o.use_io_uring = uring;
      o.direct_io = direct;
      o.chunk_bytes = kChunk;
      Loader loader(o);
      auto r = load(loader, LoadJob{path, size, s.fd(), s.data_offset(), reserve, extent, {}});
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      EXPECT_EQ(r->checksum, XXH3_64bits(want.data(), want.size()));
      EXPECT_TRUE(testing::pread_all(s.fd(), s.data_offset(), size) == want);
      EXPECT_EQ(testing::allocated_bytes(s.path()), front + extent);
      s.release(s.data_offset(), extent);
      EXPECT_EQ(testing::allocated_bytes(s.path()), front);
    }
  }
  // Someone else takes every free huge page.
  const std::string thief = huge->mount_path() + "/someone-else";
  const int fd = ::open(thief.c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  const auto all =
      static_cast<off_t>(modelpool::testing::read_hugetlb_pool().available() * 2 * kMiB);
  ASSERT_EQ(all == 0 ? 0 : ::fallocate(fd, 0, 0, all), 0) << std::strerror(errno);
  ::close(fd);
  Loader loader(Loader::Options{});
  auto r = load(loader, LoadJob{path, size, s.fd(), s.data_offset(), reserve, extent, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPoolFull) << r.status().to_string();
  EXPECT_NE(r.status().message().find("no free huge pages"), std::string::npos)
      << r.status().to_string();
  EXPECT_EQ(testing::allocated_bytes(s.path()), front);
  ::unlink(thief.c_str());
}

TEST_F(LoaderTest, MissingFileIsNotFound) {
  Loader loader(Loader::Options{});
  auto r =
      load(loader, LoadJob{src_dir_.path() + "/nope", 10, segment_->fd(), extent(0), {}, 0, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nope"), std::string::npos);
}

TEST_F(LoaderTest, SizeChangedSinceTheCallersStatFails) {
  Loader loader(Loader::Options{});
  const std::string path = make_file("changed", 1000);
  auto r = load(loader, job(path, 2000, 0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
  EXPECT_NE(r.status().message().find("shrank since it was checked"), std::string::npos)
      << r.status().message();
}

TEST_F(LoaderTest, WriteErrorIsLoadFailedWithTheCause) {
  Loader loader(Loader::Options{});
  const std::string path = make_file("w", kMiB);
  const int ro = ::open(segment_->path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(ro, 0);
  auto r = load(loader, LoadJob{path, kMiB, ro, extent(0), {}, 0, {}});
  ::close(ro);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kLoadFailed);
  EXPECT_NE(r.status().message().find("writing " + path), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("Bad file descriptor"), std::string::npos);
}

}  // namespace
}  // namespace modelpool::broker
