// File: tests/store/segment_catalog_test.cc
//
// The catalog: publish_* as a restarted broker sees it through
// adopt_entries(): READY entries come back with every field, LOADING ones
// and strays are dropped and their bytes punched, corrupt ones are refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include "broker/store/segment.hpp"
#include "tests/store/store_test_util.hpp"

namespace modelpool::broker {
namespace {

using testing::ScopedSegmentName;

constexpr std::uint64_t kMiB = 1ULL << 20;

EntryRecord meta(std::uint32_t slot, const std::string& name, std::uint64_t offset,
                 std::uint64_t size) {
  EntryRecord m;
  m.slot = slot;
  m.name = name;
  m.generation = 7;
  m.offset = offset;
  m.size = size;
  m.extent_size = (size + 2 * kMiB - 1) / (2 * kMiB) * (2 * kMiB);
  m.source = layout::SourceIdentity{11, 22, size, 33};
  m.pinned = false;
  return m;
}

// Reserves and fills [offset, offset + len) with `c`.
void fill(Segment& s, std::uint64_t offset, std::uint64_t len, char c) {
  ASSERT_TRUE(s.reserve(offset, len).ok());
  std::vector<char> bytes(len, c);
  ASSERT_EQ(::pwrite(s.fd(), bytes.data(), len, static_cast<off_t>(offset)),
            static_cast<ssize_t>(len));
}

bool has_data(int fd, std::uint64_t offset, std::uint64_t len) {
  const off_t next = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  return next >= 0 && static_cast<std::uint64_t>(next) < offset + len;
}

class SegmentCatalogTest : public ::testing::Test {
 protected:
  SegmentCatalogTest() : name_(64 * kMiB) {}
  std::unique_ptr<Segment> open(std::int64_t pid) {
    auto seg = Segment::open(name_.options(), pid);
    EXPECT_TRUE(seg.ok()) << seg.status().to_string();
    return seg.ok() ? std::move(*seg) : nullptr;
  }
  ScopedSegmentName name_;
};

TEST_F(SegmentCatalogTest, AdoptionKeepsReadyDropsLoadingAndPunchesTheRest) {
  std::uint64_t a = 0, b = 0, stray = 0;
  {
    auto s = open(1);
    ASSERT_NE(s, nullptr);
    a = s->data_offset();
    b = a + 8 * kMiB;
    stray = a + 16 * kMiB;
    fill(*s, a, 4 * kMiB, 'a');
    s->publish_loading(meta(3, "org/model-a.safetensors", a, 3 * kMiB + 5));
    s->publish_ready(3, 0xfeedULL, layout::Format::kSafetensors, 12345);
    fill(*s, b, 4 * kMiB, 'b');
    s->publish_loading(meta(5, "model-b.gguf", b, 4 * kMiB));  // "crash" mid-load
    fill(*s, stray, 2 * kMiB, 's');                            // reserved, never published
  }
  auto s = open(2);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->adopted());
  const auto kept = s->adopt_entries();
  ASSERT_EQ(kept.size(), 1U);
  const EntryRecord& e = kept[0];
  EXPECT_EQ(e.slot, 3U);
  EXPECT_EQ(e.name, "org/model-a.safetensors");
  EXPECT_EQ(e.generation, 7U);
  EXPECT_EQ(e.offset, a);
  EXPECT_EQ(e.size, 3 * kMiB + 5);
  EXPECT_EQ(e.extent_size, 4 * kMiB);
  EXPECT_EQ(e.checksum, 0xfeedULL);
  EXPECT_EQ(e.format, layout::Format::kSafetensors);
  EXPECT_EQ(e.source, (layout::SourceIdentity{11, 22, 3 * kMiB + 5, 33}));
  EXPECT_FALSE(e.pinned);
  EXPECT_GT(e.loaded_ns, 0);
  EXPECT_DOUBLE_EQ(e.load_seconds, 12345e-9);
  EXPECT_EQ(s->adoption_report().ready, 1U);
  EXPECT_EQ(s->adoption_report().loading, 1U);
  EXPECT_EQ(s->adoption_report().invalid, 0U);
  // The READY entry keeps its pages, [a, a + 3 MiB + 4 KiB); the rest of its
  // extent (written whole here, as a broker that reserved whole extents did),
  // the half-loaded and the stray bytes are gone from memory.
  const std::uint64_t pages = 3 * kMiB + 4096;
  EXPECT_EQ(s->adoption_report().punched_bytes, s->size() - s->data_offset() - pages);
  EXPECT_EQ(testing::pread_all(s->fd(), a, pages), std::vector<char>(pages, 'a'));
  EXPECT_FALSE(has_data(s->fd(), a + pages, 4 * kMiB - pages));
  EXPECT_FALSE(has_data(s->fd(), b, 4 * kMiB));
  EXPECT_FALSE(has_data(s->fd(), stray, 2 * kMiB));
  EXPECT_LT(testing::allocated_bytes(s->path()), pages + 64 * 1024);
  // The LOADING slot was freed: a second restart finds nothing to drop.
  s.reset();
  auto third = open(3);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->adopt_entries().size(), 1U);
  EXPECT_EQ(third->adoption_report().loading, 0U);
}

TEST_F(SegmentCatalogTest, PinnedFlagAndFreeSurviveRestart) {
  {
    auto s = open(1);
    ASSERT_NE(s, nullptr);
    const std::uint64_t base = s->data_offset();
    s->publish_loading(meta(0, "pinned", base, kMiB));
    s->publish_ready(0, 1, layout::Format::kRaw, 1);
    s->publish_pinned(0, true);
    s->publish_loading(meta(1, "evicted", base + 2 * kMiB, kMiB));
    s->publish_ready(1, 2, layout::Format::kGguf, 1);
    s->publish_free(1);
  }
  auto s = open(2);
  ASSERT_NE(s, nullptr);
  const auto kept = s->adopt_entries();
  ASSERT_EQ(kept.size(), 1U);
  EXPECT_EQ(kept[0].name, "pinned");
  EXPECT_TRUE(kept[0].pinned);
}

TEST_F(SegmentCatalogTest, ReusingAReadySlotNeverLeavesTheOldEntryReady) {
  {
    auto s = open(1);
    ASSERT_NE(s, nullptr);
    const std::uint64_t base = s->data_offset();
    s->publish_loading(meta(2, "old", base, kMiB));
    s->publish_ready(2, 1, layout::Format::kRaw, 1);
    s->publish_loading(meta(2, "new", base + 2 * kMiB, kMiB));  // "crash" before READY
  }
  auto s = open(2);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->adopt_entries().empty());
  EXPECT_EQ(s->adoption_report().loading, 1U);
}

TEST_F(SegmentCatalogTest, CorruptReadyEntriesAreDropped) {
  {
    auto s = open(1);
    ASSERT_NE(s, nullptr);
    const std::uint64_t base = s->data_offset();
    s->publish_loading(meta(0, "good", base, 4 * kMiB));
    s->publish_ready(0, 1, layout::Format::kRaw, 1);
    s->publish_loading(meta(1, "overlaps-good", base + 2 * kMiB, 4 * kMiB));
    s->publish_ready(1, 1, layout::Format::kRaw, 1);
    s->publish_loading(meta(2, "past-the-end", s->size() - 2 * kMiB, 4 * kMiB));
    s->publish_ready(2, 1, layout::Format::kRaw, 1);
    s->publish_loading(meta(3, "in-the-catalog", 4096, kMiB));
    s->publish_ready(3, 1, layout::Format::kRaw, 1);
    s->publish_loading(meta(4, "", base + 16 * kMiB, kMiB));
    s->publish_ready(4, 1, layout::Format::kRaw, 1);
  }
  auto s = open(2);
  ASSERT_NE(s, nullptr);
  const auto kept = s->adopt_entries();
  ASSERT_EQ(kept.size(), 1U);
  EXPECT_EQ(kept[0].name, "good");
  EXPECT_EQ(s->adoption_report().invalid, 4U);
}

TEST_F(SegmentCatalogTest, OutOfRangeSlotsAreIgnored) {
  auto s = open(1);
  ASSERT_NE(s, nullptr);
  const std::uint32_t past = s->catalog_capacity();
  s->publish_loading(meta(past, "x", s->data_offset(), kMiB));
  s->publish_ready(past, 1, layout::Format::kRaw, 1);
  s->publish_free(past);
  EXPECT_TRUE(s->adopt_entries().empty());
}

}  // namespace
}  // namespace modelpool::broker
