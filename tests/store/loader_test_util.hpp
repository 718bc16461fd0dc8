// File: tests/store/loader_test_util.hpp
//
// A fixture for loader tests: a scratch directory of source files on the
// disk filesystem, a /dev/shm segment to load into, and a blocking load()
// that waits for the `done` callback (no sleeps).
#ifndef MODELPOOL_TESTS_STORE_LOADER_TEST_UTIL_HPP_
#define MODELPOOL_TESTS_STORE_LOADER_TEST_UTIL_HPP_

#include <gtest/gtest.h>
#include <xxhash.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "broker/store/loader.hpp"
#include "broker/store/segment.hpp"
#include "huge_env.hpp"
#include "tests/store/store_test_util.hpp"

namespace modelpool::broker::testing {

// A segment of `data_bytes` on a fresh hugetlbfs mount with `pages` huge
// pages added for it, holding the host's huge-page test lock. open() returns
// nullptr with the reason in *why when the host cannot (not root, too few
// pages); a segment that will not open is a test failure, reported by the
// caller from *status.
class HugetlbfsSegment {
 public:
  static std::unique_ptr<HugetlbfsSegment> open(std::uint64_t data_bytes, std::uint64_t pages,
                                                std::string* why, Status* status) {
    auto h = std::unique_ptr<HugetlbfsSegment>(new HugetlbfsSegment());
    h->mount_ =
        modelpool::testing::mount_huge(modelpool::testing::HugeKind::kHugetlbfs, 0, pages, why);
    if (!h->mount_) return nullptr;
    h->name_ = std::make_unique<ScopedSegmentName>(data_bytes, h->mount_->path(), 16);
    auto seg = Segment::open(h->name_->options(), 1);
    if (!seg.ok()) {
      *status = seg.status();
      return h;
    }
    h->segment_ = std::move(*seg);
    return h;
  }
  Segment* segment() { return segment_.get(); }
  const std::string& mount_path() const { return mount_->path(); }

 private:
  HugetlbfsSegment() = default;
  modelpool::testing::HugeTestLock lock_;
  std::unique_ptr<modelpool::testing::ScratchMount> mount_;
  std::unique_ptr<ScopedSegmentName> name_;
  std::unique_ptr<Segment> segment_;  // closed before the name is removed and the mount goes
};

class LoaderFixture : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kMiB = 1ULL << 20;
  static constexpr std::uint64_t kExtent = 8 * kMiB;  // one per job index

  LoaderFixture() : src_dir_("/tmp"), name_(256 * kMiB) {}

  void SetUp() override {
    ASSERT_FALSE(src_dir_.path().empty());
    auto seg = Segment::open(name_.options(), ::getpid());
    ASSERT_TRUE(seg.ok()) << seg.status().to_string();
    segment_ = std::move(*seg);
  }

  // Writes a source file of `size` random bytes; returns its path.
  std::string make_file(const std::string& name, std::size_t size, std::uint64_t seed = 1) {
    const std::string path = src_dir_.path() + "/" + name;
    write_file(path, random_bytes(size, seed));
    return path;
  }

  std::uint64_t extent(unsigned index) const { return segment_->data_offset() + index * kExtent; }

  LoadJob job(const std::string& path, std::uint64_t size, unsigned index) {
    EXPECT_TRUE(segment_->reserve(extent(index), kExtent).ok());
    return LoadJob{path, size, segment_->fd(), extent(index), {}, 0, {}};
  }

  static Result<LoadResult> load(Loader& loader, LoadJob j) {
    auto promise = std::make_shared<std::promise<Result<LoadResult>>>();
    auto future = promise->get_future();
    loader.submit(std::move(j),
                  [promise](Result<LoadResult> r) { promise->set_value(std::move(r)); });
    return future.get();
  }

  // The load of `path` into extent `index` left the file's exact bytes and
  // reported their XXH3-64.
  void expect_loaded(const std::string& path, const Result<LoadResult>& r, unsigned index) {
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const std::vector<char> want = read_file(path);
    EXPECT_EQ(r->bytes, want.size());
    EXPECT_EQ(r->checksum, XXH3_64bits(want.data(), want.size()));
    EXPECT_TRUE(pread_all(segment_->fd(), extent(index), want.size()) == want)
        << "segment bytes differ from " << path;
  }

  static std::vector<char> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  TempDir src_dir_;
  ScopedSegmentName name_;
  std::unique_ptr<Segment> segment_;
};

}  // namespace modelpool::broker::testing

#endif  // MODELPOOL_TESTS_STORE_LOADER_TEST_UTIL_HPP_
