// File: tests/store/catalog_store_test.cc
//
// CatalogStore on a real segment: every change reaches the pool and the
// catalog together (what a restarted broker adopts), and every entry it
// frees has its slot cleared and its pages returned before it answers.
#include "broker/store/catalog_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/store/store_test_util.hpp"

namespace modelpool::broker {
namespace {

using testing::ScopedSegmentName;

constexpr std::uint64_t kMiB = 1ULL << 20;

layout::SourceIdentity source(std::uint64_t inode, std::uint64_t size) {
  return layout::SourceIdentity{1, inode, size, 1000 + static_cast<std::int64_t>(inode)};
}

bool has_data(const Segment& s, std::uint64_t offset, std::uint64_t len) {
  const off_t next = ::lseek(s.fd(), static_cast<off_t>(offset), SEEK_DATA);
  return next >= 0 && static_cast<std::uint64_t>(next) < offset + len;
}

class CatalogStoreTest : public ::testing::Test {
 protected:
  CatalogStoreTest() : name_(64 * kMiB, "", 16) {}

  // A store over the segment (created, or adopted when it exists), with a
  // budget of `budget` bytes.
  std::unique_ptr<CatalogStore> open(std::uint64_t budget = 8 * kMiB) {
    auto seg = Segment::open(name_.options(), ::getpid());
    EXPECT_TRUE(seg.ok()) << seg.status().to_string();
    if (!seg.ok()) return nullptr;
    PoolConfig pc;
    pc.budget = budget;
    pc.high_watermark = pc.low_watermark = 1.0;  // evictions for room only
    pc.data_begin = (*seg)->data_offset();
    pc.data_end = (*seg)->size();
    pc.alignment = (*seg)->alignment();
    pc.page_size = (*seg)->page_size();
    pc.catalog_capacity = (*seg)->catalog_capacity();
    return std::make_unique<CatalogStore>(std::move(seg).value(), pc);
  }

  // Loads `name` as a loader would: begin, fill the extent, finish.
  EntryInfo load(CatalogStore& store, const std::string& name, std::uint64_t inode,
                 std::uint64_t size) {
    auto r = store.begin_load(name, source(inode, size), size, ++now_);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok()) return {};
    fill(store, r->entry);
    const EntryInfo* e = store.finish_load(r->entry.id, 0x1234 + inode, layout::Format::kRaw, 0.5);
    EXPECT_NE(e, nullptr);
    return e != nullptr ? *e : EntryInfo{};
  }

  static void fill(CatalogStore& store, const EntryInfo& e) {
    ASSERT_TRUE(store.reserve(e.offset, e.footprint).ok());
    const std::vector<char> bytes(e.size, 'x');
    ASSERT_EQ(
        ::pwrite(store.segment().fd(), bytes.data(), bytes.size(), static_cast<off_t>(e.offset)),
        static_cast<ssize_t>(bytes.size()));
  }

  ScopedSegmentName name_;
  std::int64_t now_ = 1;
};

TEST_F(CatalogStoreTest, ALoadIsLoadingThenReadyInTheCatalogToo) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto r = store->begin_load("a.bin", source(7, kMiB), kMiB, 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const EntryInfo e = r->entry;
  EntryRecord v = store->segment().slot_view(e.slot);
  EXPECT_EQ(v.state, layout::EntryState::kLoading);
  EXPECT_EQ(v.name, "a.bin");
  EXPECT_EQ(v.generation, 1u);
  EXPECT_EQ(v.offset, e.offset);
  EXPECT_EQ(v.size, kMiB);
  fill(*store, e);
  const EntryInfo* ready = store->finish_load(e.id, 0xabcd, layout::Format::kGguf, 0.25);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->state, layout::EntryState::kReady);
  v = store->segment().slot_view(e.slot);
  EXPECT_EQ(v.state, layout::EntryState::kReady);
  EXPECT_EQ(v.checksum, 0xabcdu);
  EXPECT_EQ(v.format, layout::Format::kGguf);
  EXPECT_TRUE(store->pool().self_check().ok());
}

TEST_F(CatalogStoreTest, AFailedLoadLeavesNeitherAnEntryNorASlotNorPages) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto r = store->begin_load("a.bin", source(7, kMiB), kMiB, 1);
  ASSERT_TRUE(r.ok());
  fill(*store, r->entry);
  ASSERT_TRUE(has_data(store->segment(), r->entry.offset, kMiB));
  const EntryInfo gone = store->fail_load(r->entry.id);
  EXPECT_EQ(gone.id, r->entry.id);
  EXPECT_EQ(store->pool().find_current("a.bin"), nullptr);
  EXPECT_EQ(store->segment().slot_view(gone.slot).state, layout::EntryState::kFree);
  EXPECT_FALSE(has_data(store->segment(), gone.offset, kMiB));
  EXPECT_EQ(store->fail_load(gone.id).id, 0u) << "a second failure of the same load is nothing";
}

TEST_F(CatalogStoreTest, EvictionForRoomFreesTheSlotAndThePagesOfWhatWent) {
  auto store = open(3 * kMiB);
  ASSERT_NE(store, nullptr);
  const EntryInfo a = load(*store, "a.bin", 1, 2 * kMiB);
  ASSERT_NE(a.id, 0u);
  auto r = store->begin_load("b.bin", source(2, 2 * kMiB), 2 * kMiB, ++now_);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->evicted.size(), 1u);
  EXPECT_EQ(r->evicted[0].name, "a.bin");
  EXPECT_TRUE(a.slot == r->entry.slot ||
              store->segment().slot_view(a.slot).state == layout::EntryState::kFree);
  EXPECT_EQ(store->segment().slot_view(r->entry.slot).name, "b.bin");
  EXPECT_FALSE(has_data(store->segment(), a.offset, 2 * kMiB));
}

TEST_F(CatalogStoreTest, AdminEvictAndClearFreeSlotsAndPages) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const EntryInfo a = load(*store, "a.bin", 1, kMiB);
  const EntryInfo b = load(*store, "b.bin", 2, kMiB);
  const EntryInfo c = load(*store, "c.bin", 3, kMiB);
  ASSERT_TRUE(store->set_pinned("c.bin", true).ok());
  auto gone = store->evict("a.bin");
  ASSERT_TRUE(gone.ok()) << gone.status().to_string();
  EXPECT_EQ(store->segment().slot_view(a.slot).state, layout::EntryState::kFree);
  EXPECT_FALSE(has_data(store->segment(), a.offset, kMiB));
  const auto cleared = store->clear();
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0].name, "b.bin");
  EXPECT_EQ(store->segment().slot_view(b.slot).state, layout::EntryState::kFree);
  EXPECT_FALSE(has_data(store->segment(), b.offset, kMiB));
  EXPECT_EQ(store->segment().slot_view(c.slot).state, layout::EntryState::kReady)
      << "a pinned model stays";
  EXPECT_TRUE(has_data(store->segment(), c.offset, kMiB));
}

TEST_F(CatalogStoreTest, APinThroughAnAliasIsThePinOfTheBytesInTheCatalog) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  const EntryInfo a = load(*store, "a.bin", 1, kMiB);
  auto al = store->alias("link.bin", a.id, ++now_);
  ASSERT_TRUE(al.ok()) << al.status().to_string();
  ASSERT_TRUE(store->set_pinned("link.bin", true).ok());
  EXPECT_TRUE(store->segment().slot_view(a.slot).pinned);
  EXPECT_FALSE(store->pool().find_current("a.bin")->pinned) << "the name a.bin itself is not";
  ASSERT_TRUE(store->set_pinned("a.bin", true).ok());
  ASSERT_TRUE(store->set_pinned("link.bin", false).ok());
  EXPECT_TRUE(store->segment().slot_view(a.slot).pinned) << "a.bin still pins its bytes";
  ASSERT_TRUE(store->set_pinned("a.bin", false).ok());
  EXPECT_FALSE(store->segment().slot_view(a.slot).pinned);
  EXPECT_EQ(store->set_pinned("nothing.bin", true).code(), ErrorCode::kNotFound);
  auto gone = store->evict("link.bin");  // the name only: the bytes stay with a.bin
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(store->segment().slot_view(a.slot).state, layout::EntryState::kReady);
  EXPECT_TRUE(has_data(store->segment(), a.offset, kMiB));
}

TEST_F(CatalogStoreTest, ARestartAdoptsWhatTheCatalogSaysAndFreesWhatNobodyHolds) {
  EntryInfo a, old, now;
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    a = load(*store, "a.bin", 1, kMiB);
    ASSERT_TRUE(store->set_pinned("a.bin", true).ok());
    old = load(*store, "m.bin", 2, kMiB);
    store->add_ref(old.id, ++now_);        // a holder keeps generation 1...
    now = load(*store, "m.bin", 3, kMiB);  // ...while the file is replaced
    ASSERT_EQ(now.generation, 2u);
    ASSERT_EQ(store->segment().slot_view(old.slot).state, layout::EntryState::kReady);
  }  // the broker dies: nothing is freed, the catalog stays
  auto store = open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->segment().adopted());
  const auto adoption = store->adopt(0);
  EXPECT_EQ(adoption.kept, 2u);
  ASSERT_EQ(adoption.refused.size(), 1u) << "generation 1 of m.bin: superseded, mapped by nobody";
  EXPECT_EQ(adoption.refused[0].name, "m.bin");
  EXPECT_EQ(adoption.refused[0].generation, 1u);
  EXPECT_EQ(store->segment().slot_view(old.slot).state, layout::EntryState::kFree);
  EXPECT_FALSE(has_data(store->segment(), old.offset, kMiB));
  const EntryInfo* ra = store->pool().find_current("a.bin");
  ASSERT_NE(ra, nullptr);
  EXPECT_TRUE(ra->pinned);
  EXPECT_EQ(ra->offset, a.offset);
  EXPECT_EQ(ra->checksum, a.checksum);
  const EntryInfo* rm = store->pool().find_current("m.bin");
  ASSERT_NE(rm, nullptr);
  EXPECT_EQ(rm->generation, 2u);
  EXPECT_EQ(rm->offset, now.offset);
  EXPECT_TRUE(has_data(store->segment(), now.offset, kMiB));
  EXPECT_TRUE(store->pool().self_check().ok());
}

}  // namespace
}  // namespace modelpool::broker
