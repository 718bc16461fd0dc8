// File: tests/store/segment_test.cc
//
// Segment: creation, header fields, adoption of a compatible segment,
// refusal of incompatible ones, recreate, file-backed segments, reserve and
// release as seen in /proc/meminfo, and a full filesystem giving pool_full.
#include "broker/store/segment.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <fstream>

#include "tests/store/store_test_util.hpp"

namespace modelpool::broker {
namespace {

using testing::ScopedSegmentName;
using testing::ScratchMount;
using testing::TempDir;

constexpr std::uint64_t kMiB = 1ULL << 20;

void corrupt(const std::string& path, std::size_t offset, const void* bytes, std::size_t len) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes, len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
  ::close(fd);
}

TEST(SegmentTest, CreatesSegmentWithHeaderFields) {
  ScopedSegmentName name(64 * kMiB, "", 100);
  auto seg = Segment::open(name.options(), 4242);
  ASSERT_TRUE(seg.ok()) << seg.status().to_string();
  const Segment& s = **seg;
  EXPECT_FALSE(s.adopted());
  EXPECT_EQ(s.path(), "/dev/shm/" + name.options().pool);
  const layout::SegmentHeader& h = s.header();
  EXPECT_EQ(std::string(h.magic, 8), std::string(layout::kMagic, 8));
  EXPECT_EQ(h.layout_version, layout::kLayoutVersion);
  EXPECT_EQ(std::string(h.pool_name), name.options().pool);
  EXPECT_EQ(h.broker_pid, 4242);
  EXPECT_GT(h.created_unix_ns, 0);
  EXPECT_EQ(h.catalog_capacity, 100U);
  EXPECT_EQ(s.catalog_capacity(), 100U);
  EXPECT_EQ(h.alignment, layout::kDefaultAlignment);
  EXPECT_EQ(s.data_offset() % (2 * kMiB), 0U);
  EXPECT_GE(s.data_offset(), h.catalog_offset + 100 * sizeof(layout::CatalogEntry));
  EXPECT_EQ(s.size(), s.data_offset() + 64 * kMiB);
  EXPECT_EQ(s.page_size(), 4096U);
  EXPECT_FALSE(s.hugetlbfs());
  struct stat st {};
  ASSERT_EQ(::stat(s.path().c_str(), &st), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), s.size());
  EXPECT_EQ(st.st_mode & 0777, 0640U);
  EXPECT_GE(s.fd(), 0);
  EXPECT_TRUE(layout::validate_header(h, name.options().pool, s.size()).ok());
}

TEST(SegmentTest, ReopenAdoptsAndKeepsGeometry) {
  ScopedSegmentName name(32 * kMiB);
  std::int64_t created = 0;
  std::uint64_t size = 0;
  {
    auto seg = Segment::open(name.options(), 1);
    ASSERT_TRUE(seg.ok()) << seg.status().to_string();
    created = (*seg)->header().created_unix_ns;
    size = (*seg)->size();
  }
  name.options().data_bytes = 128 * kMiB;  // ignored: the existing geometry wins
  auto again = Segment::open(name.options(), 2);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_TRUE((*again)->adopted());
  EXPECT_EQ((*again)->header().broker_pid, 2);
  EXPECT_EQ((*again)->header().created_unix_ns, created);
  EXPECT_EQ((*again)->size(), size);
}

TEST(SegmentTest, RefusesBadMagicWithClearMessage) {
  ScopedSegmentName name(16 * kMiB);
  std::string path;
  {
    auto seg = Segment::open(name.options(), 1);
    ASSERT_TRUE(seg.ok());
    path = (*seg)->path();
  }
  corrupt(path, 0, "NOTMPOOL", 8);
  auto again = Segment::open(name.options(), 2);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kInternal);
  EXPECT_NE(again.status().message().find("bad magic"), std::string::npos)
      << again.status().message();
  EXPECT_NE(again.status().message().find(path), std::string::npos);
  EXPECT_NE(again.status().message().find("recreate"), std::string::npos);
}

TEST(SegmentTest, RefusesOtherLayoutVersion) {
  ScopedSegmentName name(16 * kMiB);
  std::string path;
  {
    auto seg = Segment::open(name.options(), 1);
    ASSERT_TRUE(seg.ok());
    path = (*seg)->path();
  }
  const std::uint32_t future = layout::kLayoutVersion + 1;
  corrupt(path, offsetof(layout::SegmentHeader, layout_version), &future, sizeof future);
  auto again = Segment::open(name.options(), 2);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("layout version " + std::to_string(future)),
            std::string::npos)
      << again.status().message();
}

TEST(SegmentTest, RecreateDiscardsAnIncompatibleSegment) {
  ScopedSegmentName name(16 * kMiB);
  {
    auto seg = Segment::open(name.options(), 1);
    ASSERT_TRUE(seg.ok());
    corrupt((*seg)->path(), 0, "garbage!", 8);
  }
  ASSERT_FALSE(Segment::open(name.options(), 2).ok());
  name.options().recreate = true;
  auto fresh = Segment::open(name.options(), 3);
  ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
  EXPECT_FALSE((*fresh)->adopted());
  EXPECT_EQ((*fresh)->header().broker_pid, 3);
}

TEST(SegmentTest, ReinitializesAnEmptyLeftoverFromACrashedCreation) {
  ScopedSegmentName name(16 * kMiB);
  const std::string path = "/dev/shm/" + name.options().pool;
  std::ofstream(path).close();  // zero bytes, as after shm_open and a crash
  auto seg = Segment::open(name.options(), 1);
  ASSERT_TRUE(seg.ok()) << seg.status().to_string();
  EXPECT_FALSE((*seg)->adopted());
  EXPECT_EQ((*seg)->size(), static_cast<std::uint64_t>(std::filesystem::file_size(path)));
}

TEST(SegmentTest, ReinitializesASegmentWhoseMagicWasNeverWritten) {
  ScopedSegmentName name(16 * kMiB);
  {
    auto seg = Segment::open(name.options(), 1);
    ASSERT_TRUE(seg.ok());
    const char zeros[8] = {};
    corrupt((*seg)->path(), 0, zeros, sizeof zeros);  // creation died before the magic
  }
  auto again = Segment::open(name.options(), 2);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_FALSE((*again)->adopted());
}

TEST(SegmentTest, RefusesAFileSmallerThanAHeader) {
  ScopedSegmentName name(16 * kMiB);
  const std::string path = "/dev/shm/" + name.options().pool;
  testing::write_file(path, std::vector<char>(100, 'x'));
  auto seg = Segment::open(name.options(), 1);
  ASSERT_FALSE(seg.ok());
  EXPECT_NE(seg.status().message().find("smaller than its header"), std::string::npos)
      << seg.status().message();
}

TEST(SegmentTest, FileSegmentInADirectory) {
  TempDir dir;
  ScopedSegmentName name(16 * kMiB, dir.path());
  name.options().mode = 0600;
  {
    auto seg = Segment::open(name.options(), 1);
    ASSERT_TRUE(seg.ok()) << seg.status().to_string();
    EXPECT_EQ((*seg)->path(), dir.path() + "/" + name.options().pool + ".segment");
    struct stat st {};
    ASSERT_EQ(::stat((*seg)->path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600U);
  }
  auto again = Segment::open(name.options(), 2);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_TRUE((*again)->adopted());
  ASSERT_TRUE(Segment::remove(name.options()).ok());
  EXPECT_FALSE(std::filesystem::exists((*again)->path()));
}

TEST(SegmentTest, RejectsBadOptions) {
  SegmentOptions o;
  o.pool = "../evil";
  o.data_bytes = kMiB;
  EXPECT_EQ(Segment::open(o, 1).status().code(), ErrorCode::kInvalidName);
  o.pool = testing::unique_pool();
  o.data_bytes = 0;
  EXPECT_EQ(Segment::open(o, 1).status().code(), ErrorCode::kBadRequest);
}

TEST(SegmentTest, RemoveIsIdempotent) {
  ScopedSegmentName name(16 * kMiB);
  std::string path;
  {
    auto seg = Segment::open(name.options(), 1);
    ASSERT_TRUE(seg.ok());
    path = (*seg)->path();
  }
  EXPECT_TRUE(Segment::remove(name.options()).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(Segment::remove(name.options()).ok());
}

TEST(SegmentTest, ReserveAndReleaseMoveShmem) {
  constexpr std::uint64_t kLen = 256 * kMiB;
  ScopedSegmentName name(1024 * kMiB);
  auto seg = Segment::open(name.options(), 1);
  ASSERT_TRUE(seg.ok());
  Segment& s = **seg;
  const std::uint64_t before = testing::meminfo_shmem_bytes();
  const std::uint64_t held_before = testing::allocated_bytes(s.path());
  ASSERT_TRUE(s.reserve(s.data_offset(), kLen).ok());
  const std::uint64_t reserved = testing::meminfo_shmem_bytes();
  EXPECT_EQ(testing::allocated_bytes(s.path()) - held_before, kLen);
  // Other processes may move Shmem a little meanwhile: allow a quarter.
  EXPECT_GT(reserved, before + kLen * 3 / 4) << "Shmem " << before << " -> " << reserved;
  EXPECT_LT(reserved, before + kLen * 5 / 4) << "Shmem " << before << " -> " << reserved;
  s.release(s.data_offset(), kLen);
  const std::uint64_t released = testing::meminfo_shmem_bytes();
  EXPECT_EQ(testing::allocated_bytes(s.path()), held_before);
  EXPECT_LT(released + kLen * 3 / 4, reserved) << "Shmem " << reserved << " -> " << released;
}

TEST(SegmentTest, ReserveOutsideTheDataRegionFails) {
  ScopedSegmentName name(16 * kMiB);
  auto seg = Segment::open(name.options(), 1);
  ASSERT_TRUE(seg.ok());
  Segment& s = **seg;
  EXPECT_EQ(s.reserve(0, 4096).code(), ErrorCode::kInternal);  // the catalog
  EXPECT_EQ(s.reserve(s.size() - 4096, 8192).code(), ErrorCode::kInternal);
  EXPECT_EQ(s.reserve(s.data_offset(), 0).code(), ErrorCode::kInternal);
  EXPECT_EQ(s.reserve(s.data_offset(), ~0ULL).code(), ErrorCode::kInternal);
}

TEST(SegmentTest, ReserveOnAFullTmpfsIsPoolFullNotSigbus) {
  std::string why;
  auto mount = ScratchMount::tmpfs(8 * kMiB, /*huge=*/false, &why);
  if (!mount) GTEST_SKIP() << why;
  ScopedSegmentName name(64 * kMiB, mount->path(), 16);  // sparse: larger than the fs
  auto seg = Segment::open(name.options(), 1);
  ASSERT_TRUE(seg.ok()) << seg.status().to_string();
  Segment& s = **seg;
  ASSERT_TRUE(s.reserve(s.data_offset(), 2 * kMiB).ok());
  const Status full = s.reserve(s.data_offset() + 2 * kMiB, 16 * kMiB);
  EXPECT_EQ(full.code(), ErrorCode::kPoolFull);
  EXPECT_NE(full.message().find("filesystem full"), std::string::npos) << full.message();
  // The failed reserve left nothing behind; the reserved extent still works.
  EXPECT_LT(testing::allocated_bytes(s.path()), 3 * kMiB);
  std::vector<char> bytes(2 * kMiB, 'x');
  EXPECT_EQ(::pwrite(s.fd(), bytes.data(), bytes.size(), static_cast<off_t>(s.data_offset())),
            static_cast<ssize_t>(bytes.size()));
}

TEST(SegmentTest, HugeTmpfsHasTwoMebibytePages) {
  std::string why;
  auto mount = ScratchMount::tmpfs(64 * kMiB, /*huge=*/true, &why);
  if (!mount) GTEST_SKIP() << why;
  ScopedSegmentName name(16 * kMiB, mount->path(), 16);
  auto seg = Segment::open(name.options(), 1);
  ASSERT_TRUE(seg.ok()) << seg.status().to_string();
  EXPECT_EQ((*seg)->page_size(), 2 * kMiB);
  EXPECT_EQ((*seg)->alignment(), 2 * kMiB);
}

TEST(SegmentTest, FilesystemFreeBytes) {
  auto free = filesystem_free_bytes("/dev/shm");
  ASSERT_TRUE(free.ok()) << free.status().to_string();
  EXPECT_GT(*free, 0U);
  EXPECT_FALSE(filesystem_free_bytes("/nonexistent/modelpool").ok());
}

}  // namespace
}  // namespace modelpool::broker
