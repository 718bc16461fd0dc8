// File: tests/fault/restart_test.cc
//
// SIGKILL of the broker at chosen instants — idle, mid-load, mid-eviction,
// mid-request — and the restart that re-adopts the segment: READY entries
// keep their offsets, generations, checksums and pins and are not read from
// disk again; LOADING entries are dropped and their bytes punched; workers'
// mappings stay readable and correct while no broker runs. Instants a real
// kill cannot hit on purpose are crafted in the dead broker's catalog.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstring>
#include <future>
#include <modelpool/client.hpp>

#include "broker_fixture.hpp"
#include "fault_support.hpp"

namespace modelpool::fault {
namespace {

using testing::Broker;
using testing::ScratchDir;

constexpr std::uint64_t kMiB = 1ULL << 20;

Ranges ready_pages(const std::vector<CatalogRow>& rows) {
  Ranges out;
  for (const auto& r : rows) {
    if (r.state == layout::EntryState::kReady) out.emplace_back(r.offset, r.offset + r.pages());
  }
  return out;
}

const CatalogRow* find_row(const std::vector<CatalogRow>& rows, const std::string& name) {
  for (const auto& r : rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

// The broker agrees with itself and with its catalog, and loaded nothing.
void expect_readopted_without_loads(const Broker& b) {
  json check = b.admin("selfcheck");
  EXPECT_TRUE(check.value("consistent", false)) << check.dump();
  EXPECT_EQ(b.admin("stats")["loads"], 0) << "a model was read from disk again";
}

// Only READY entries are left, and the data region holds their pages and
// nothing else (not the rest of their extents either).
void expect_no_stray_bytes(const std::string& segment) {
  SegmentView v(segment);
  const auto rows = v.rows();
  std::uint64_t pages = 0;
  for (const auto& r : rows) {
    EXPECT_EQ(r.state, layout::EntryState::kReady) << r.name;
    pages += r.pages();
  }
  EXPECT_EQ(SegmentView::uncovered(v.written_ranges(), ready_pages(rows)), 0U);
  EXPECT_EQ(v.held_bytes(), pages);
}

TEST(Restart, KillWhileIdleKeepsEveryReadyEntryInPlace) {
  ScratchDir models;
  const std::string a = models.write_random("a.bin", 3 * kMiB, 1);
  models.write_random("b.bin", 5 * kMiB + 7, 2);
  models.write_random("p.bin", 1 * kMiB, 3);
  Broker b(models.path());
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "p.bin"}, {"pin", true}})["ok"].get<bool>());
  Conn w(b.worker_socket());
  json first_a = *w.request({{"op", "acquire"}, {"model", "a.bin"}});
  json first_b = *w.request({{"op", "acquire"}, {"model", "b.bin"}});
  ASSERT_TRUE(first_a["ok"].get<bool>()) << first_a.dump();
  EXPECT_EQ(first_a["checksum"], hex16(xxh3_file(a)));
  b.kill9();

  {  // What the dead broker left: three READY entries whose bytes match their checksums.
    SegmentView v(b.segment_path());
    const auto rows = v.rows();
    ASSERT_EQ(rows.size(), 3U);
    for (const auto& r : rows) {
      EXPECT_EQ(r.state, layout::EntryState::kReady) << r.name;
      EXPECT_EQ(v.hash(r.offset, r.size), r.checksum) << r.name;
    }
    EXPECT_TRUE(find_row(rows, "p.bin")->pinned);
  }
  b.start();
  expect_readopted_without_loads(b);
  json list = b.admin("list");
  ASSERT_EQ(list["models"].size(), 3U);
  for (const json& row : list["models"]) {
    if (row["name"] == "p.bin") {
      EXPECT_TRUE(row["pinned"].get<bool>());
    }
    if (row["name"] == "b.bin") {
      EXPECT_EQ(row["offset"], first_b["offset"]);
    }
  }
  Conn again(b.worker_socket());
  json r = *again.request({{"op", "acquire"}, {"model", "a.bin"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_TRUE(r["cached"].get<bool>());
  for (const char* k : {"offset", "size", "generation", "checksum"}) {
    EXPECT_EQ(r[k], first_a[k]) << k;
  }
  expect_readopted_without_loads(b);
  expect_no_stray_bytes(b.segment_path());
}

TEST(Restart, KillMidLoadDropsTheHalfLoadedEntryAndFreesItsBytes) {
  ScratchDir models;
  models.write_random("small.bin", 2 * kMiB, 1);
  ScratchDir logs;
  bool caught = false;
  // The kill must land while the big load runs; a bigger file gives a wider
  // window if a load ever finishes first. The outcome is checked either way.
  for (std::uint64_t big : {256 * kMiB, 768 * kMiB}) {
    const std::string big_path = models.write_random("big.bin", big, 9);
    Broker b(models.path(), {"--log-level", "info"});
    b.capture_stderr(logs.path() + "/broker.log");
    b.start();
    ASSERT_TRUE(b.admin("load", {{"model", "small.bin"}})["ok"].get<bool>());
    Conn w(b.worker_socket());
    ASSERT_TRUE(w.send({{"op", "acquire"}, {"model", "big.bin"}}));
    for (int i = 0; i < 100000; ++i) {
      const json rows = b.admin("list")["models"];
      if (rows.size() == 2) break;  // big.bin's LOADING entry is published
    }
    b.kill9();
    EXPECT_FALSE(w.recv().has_value()) << "the connection ends with the broker";
    std::uint64_t held_before = 0;
    {
      SegmentView v(b.segment_path());
      const auto rows = v.rows();
      const CatalogRow* r = find_row(rows, "big.bin");
      ASSERT_NE(r, nullptr);
      caught = r->state == layout::EntryState::kLoading;
      held_before = v.held_bytes();
    }
    b.start();
    expect_readopted_without_loads(b);
    expect_no_stray_bytes(b.segment_path());
    if (caught) {
      SegmentView v(b.segment_path());
      const auto rows = v.rows();
      EXPECT_EQ(find_row(rows, "big.bin"), nullptr);
      EXPECT_EQ(v.held_bytes(), 2 * kMiB);
      // The loader reserves as it copies: the half-loaded extent held
      // between nothing and all of its bytes, and holds nothing now.
      EXPECT_GE(held_before, v.held_bytes());
      EXPECT_NE(b.stderr_text().find("dropped 1 half-loaded"), std::string::npos)
          << b.stderr_text();
    }
    Conn again(b.worker_socket());
    json r = *again.request({{"op", "acquire"}, {"model", "big.bin"}});
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
    EXPECT_EQ(r["checksum"], hex16(xxh3_file(big_path)));
    EXPECT_EQ(r["cached"].get<bool>(), !caught);
    if (caught) break;
  }
  EXPECT_TRUE(caught) << "every kill landed after the load had finished";
}

TEST(Restart, CrashLeftoversInTheCatalogAndDataRegionAreDroppedAndPunched) {
  ScratchDir models;
  models.write_random("a.bin", 3 * kMiB, 1);
  models.write_random("b.bin", 4 * kMiB, 2);
  ScratchDir logs;
  Broker b(models.path(), {"--log-level", "info"});
  b.capture_stderr(logs.path() + "/broker.log");
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "a.bin"}})["ok"].get<bool>());
  ASSERT_TRUE(b.admin("load", {{"model", "b.bin"}})["ok"].get<bool>());
  b.kill9();
  std::uint64_t a_pages = 0;
  {  // Craft what a kill leaves at three instants.
    SegmentView v(b.segment_path(), true);
    const auto rows = v.rows();
    const CatalogRow* a = find_row(rows, "a.bin");
    const CatalogRow* bb = find_row(rows, "b.bin");
    ASSERT_TRUE(a && bb);
    a_pages = a->pages();
    // Mid-eviction: b's slot is FREE but its bytes are not punched yet.
    v.catalog_mut(bb->slot).state.store(0);
    // Mid-load: a LOADING entry whose extent holds half its bytes.
    const std::uint64_t ghost = v.header().data_offset + 64 * kMiB;
    layout::CatalogEntry& g =
        v.catalog_mut(static_cast<std::uint32_t>(v.header().catalog_capacity - 1));
    std::memcpy(g.name, "ghost.bin", 10);
    g.name_len = 9;
    g.generation = 1;
    g.offset = ghost;
    g.size = g.extent_size = 4 * kMiB;
    g.state.store(static_cast<std::uint32_t>(layout::EntryState::kLoading));
    // Mid-reserve: memory reserved for a load whose entry was never published.
    const int fd = ::open(b.segment_path().c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fallocate(fd, 0, static_cast<off_t>(ghost), 2 * kMiB), 0);
    ASSERT_EQ(::fallocate(fd, 0, static_cast<off_t>(ghost + 128 * kMiB), 2 * kMiB), 0);
    ::close(fd);
    EXPECT_EQ(v.held_bytes(), a_pages + bb->pages() + 4 * kMiB);
    EXPECT_EQ(SegmentView::uncovered(v.written_ranges(), {{a->offset, a->offset + a_pages}}),
              bb->size)
        << "b's bytes are still written";
  }
  b.start();
  expect_readopted_without_loads(b);
  expect_no_stray_bytes(b.segment_path());
  SegmentView v(b.segment_path());
  ASSERT_EQ(v.rows().size(), 1U);
  EXPECT_EQ(v.rows()[0].name, "a.bin");
  EXPECT_EQ(v.held_bytes(), a_pages);
  EXPECT_NE(b.stderr_text().find("dropped 1 half-loaded"), std::string::npos) << b.stderr_text();
  Conn w(b.worker_socket());
  json r = *w.request({{"op", "acquire"}, {"model", "b.bin"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_FALSE(r["cached"].get<bool>()) << "a half-evicted entry is never adopted";
}

TEST(Restart, MappingsSurviveAKillMidRequestAndReacquireFindsTheSameBytes) {
  ScratchDir models;
  models.write_random("a.bin", 6 * kMiB + 123, 1);
  models.write_random("b.bin", 64 * kMiB, 2);
  Broker b(models.path());
  b.start();
  Conn w(b.worker_socket());
  json hello = *w.request({{"op", "hello"}});
  json held = *w.request({{"op", "acquire"}, {"model", "a.bin"}});
  ASSERT_TRUE(held["ok"].get<bool>()) << held.dump();
  Mapping m(hello["segment_path"], held["offset"], held["size"]);
  const std::string sum = held["checksum"];
  ASSERT_EQ(hex16(m.hash()), sum);
  // Requests in flight (a cold load among them) when the broker dies.
  ASSERT_TRUE(w.send({{"op", "acquire"}, {"model", "b.bin"}, {"id", 1}}));
  ASSERT_TRUE(w.send({{"op", "acquire"}, {"model", "a.bin"}, {"id", 2}}));
  b.kill9();
  while (w.recv()) {
  }
  EXPECT_TRUE(w.closed()) << "EOF, not a hang";
  EXPECT_EQ(hex16(m.hash()), sum) << "the mapping stays readable and correct with no broker";
  b.start();
  EXPECT_EQ(hex16(m.hash()), sum);
  Conn again(b.worker_socket());
  json r = *again.request({{"op", "acquire"}, {"model", "a.bin"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  for (const char* k : {"offset", "size", "generation", "checksum"}) EXPECT_EQ(r[k], held[k]) << k;
  EXPECT_TRUE(r["cached"].get<bool>());
  EXPECT_EQ(hex16(m.hash()), sum);
  expect_readopted_without_loads(b);
  expect_no_stray_bytes(b.segment_path());
}

// The client library across a SIGKILL and restart of the real broker: a
// worker's Model stays readable while the broker is down, an acquire made
// during the outage waits for the broker (up to its reconnect timeout), and
// the live Model is re-acquired in place: the restarted broker holds its
// handle, and nothing is read from disk again.
TEST(Restart, ALibraryClientRidesOutABrokerRestart) {
  ScratchDir models;
  const std::string a = models.write_random("a.bin", 3 * kMiB, 1);
  const std::string bfile = models.write_random("b.bin", 2 * kMiB, 2);
  Broker b(models.path());
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "b.bin"}})["ok"].get<bool>());
  Client client = Client::connect(b.worker_socket(), ClientOptions{std::chrono::seconds(60)});
  Model ma = client.acquire("a.bin");
  const std::uint64_t checksum = ma.checksum();
  b.kill9();
  EXPECT_EQ(XXH3_64bits(ma.bytes().data(), ma.bytes().size()), checksum);
  auto during = std::async(std::launch::async, [&] { return client.acquire("b.bin"); });
  b.start();
  ASSERT_EQ(during.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  Model mb = during.get();
  EXPECT_EQ(XXH3_64bits(mb.bytes().data(), mb.bytes().size()), xxh3_file(bfile));
  EXPECT_EQ(XXH3_64bits(ma.bytes().data(), ma.bytes().size()), checksum);
  json stats = b.admin("stats");
  EXPECT_EQ(stats["handles"], 2) << "a.bin was re-acquired: " << stats.dump();
  expect_readopted_without_loads(b);

  // With a short timeout, an acquire during an outage gives up with a typed error.
  Client quick = Client::connect(b.worker_socket(), ClientOptions{std::chrono::milliseconds(300)});
  Model qa = quick.acquire("a.bin");
  b.kill9();
  try {
    (void)quick.acquire("b.bin");
    ADD_FAILURE() << "acquire succeeded with no broker";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("after trying for 300 ms"), std::string::npos) << e.what();
  }
  EXPECT_EQ(XXH3_64bits(qa.bytes().data(), qa.bytes().size()), checksum);
  b.start();
}

}  // namespace
}  // namespace modelpool::fault
