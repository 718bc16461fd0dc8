// File: tests/fault/selfcheck_test.cc
//
// The `selfcheck` admin op (and `modelpoolctl selfcheck`) covers the segment
// too: every catalog slot agrees with the pool's entry, no slot holds an
// entry the pool does not know, and no memory is resident outside the
// pool's extents. Disagreements are injected into a live broker's segment.
// Also the grace period of adopted entries (--adopt-grace), and pins that
// must survive a restart after a generation change.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "broker_fixture.hpp"
#include "fault_support.hpp"

namespace modelpool::fault {
namespace {

using testing::Broker;
using testing::ScratchDir;

constexpr std::uint64_t kMiB = 1ULL << 20;

json problems(const Broker& b) {
  json r = b.admin("selfcheck");
  EXPECT_EQ(r.value("consistent", true), r["problems"].empty()) << r.dump();
  return r["problems"];
}

bool mentions(const json& problems, const std::string& what) {
  for (const json& p : problems) {
    if (p.get<std::string>().find(what) != std::string::npos) return true;
  }
  return false;
}

TEST(Selfcheck, CatalogThatDisagreesWithThePoolIsAProblem) {
  ScratchDir models;
  models.write_random("a.bin", 3 * kMiB, 1);
  Broker b(models.path());
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "a.bin"}})["ok"].get<bool>());
  ASSERT_TRUE(problems(b).empty());
  SegmentView v(b.segment_path(), true);  // the broker's own catalog, behind its back
  const CatalogRow a = v.rows().at(0);
  layout::CatalogEntry& e = v.catalog_mut(a.slot);

  e.generation = 7;
  json p = problems(b);
  EXPECT_TRUE(mentions(p, "\"a.bin\" generation 1 disagrees with the pool: generation 7"))
      << p.dump();
  auto [st, out] =
      testing::run_command({testing::binary_path("clientlib/modelpoolctl"), "--run-dir",
                            b.run_dir(), "--pool", b.pool(), "selfcheck"});
  EXPECT_EQ(WEXITSTATUS(st), 1) << out;
  EXPECT_NE(out.find("generation 7"), std::string::npos) << out;
  e.generation = 1;
  e.pinned = 1;
  EXPECT_TRUE(mentions(problems(b), "pinned yes, pool says no"));
  e.pinned = 0;
  e.checksum ^= 1;
  EXPECT_TRUE(mentions(problems(b), "checksum"));
  e.checksum ^= 1;
  ASSERT_TRUE(problems(b).empty());

  // A READY slot the pool does not know: a restart would adopt it.
  const auto spare = static_cast<std::uint32_t>(v.header().catalog_capacity - 1);
  layout::CatalogEntry& ghost = v.catalog_mut(spare);
  std::memcpy(ghost.name, "ghost.bin", 10);
  ghost.name_len = 9;
  ghost.state.store(static_cast<std::uint32_t>(layout::EntryState::kReady));
  EXPECT_TRUE(mentions(problems(b), "holds ready \"ghost.bin\"")) << problems(b).dump();
  ghost.state.store(0);
  ASSERT_TRUE(problems(b).empty());
}

TEST(Selfcheck, MemoryResidentOutsideEveryExtentIsALeak) {
  ScratchDir models;
  models.write_random("a.bin", 3 * kMiB, 1);
  Broker b(models.path());
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "a.bin"}})["ok"].get<bool>());
  const int fd = ::open(b.segment_path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const off_t stray =
      static_cast<off_t>(SegmentView(b.segment_path()).header().data_offset + 512 * kMiB);
  ASSERT_EQ(::fallocate(fd, 0, stray, 2 * kMiB), 0);
  json p = problems(b);
  EXPECT_TRUE(mentions(p, "holds 2.0 MiB of memory outside every extent")) << p.dump();
  ASSERT_EQ(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, stray, 2 * kMiB), 0);
  ::close(fd);
  EXPECT_TRUE(problems(b).empty());
}

TEST(Selfcheck, AReadyExtentThatLostMemoryIsAProblem) {
  ScratchDir models;
  models.write_random("a.bin", 6 * kMiB, 1);
  Broker b(models.path());
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "a.bin"}})["ok"].get<bool>());
  const CatalogRow a = SegmentView(b.segment_path()).rows().at(0);
  const int fd = ::open(b.segment_path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        static_cast<off_t>(a.offset + 2 * kMiB), 2 * kMiB),
            0);
  ::close(fd);
  json p = problems(b);
  EXPECT_TRUE(mentions(p, "holds 4.0 MiB but the ready extents need 6.0 MiB")) << p.dump();
}

// A loading extent fills as the load's writes land: a selfcheck that runs
// while a load is in flight finds nothing wrong.
TEST(Selfcheck, ALoadInFlightIsConsistent) {
  ScratchDir models;
  models.write_random("small.bin", 2 * kMiB, 1);
  bool caught = false;
  for (std::uint64_t big : {256 * kMiB, 768 * kMiB}) {
    models.write_random("big.bin", big, 9);
    Broker b(models.path());
    b.start();
    ASSERT_TRUE(b.admin("load", {{"model", "small.bin"}})["ok"].get<bool>());
    Conn w(b.worker_socket());
    ASSERT_TRUE(w.send({{"op", "acquire"}, {"model", "big.bin"}}));
    for (int i = 0; i < 100000; ++i) {
      if (b.admin("list")["models"].size() == 2) break;  // big.bin's LOADING entry is published
    }
    const json p = problems(b);
    EXPECT_TRUE(p.empty()) << p.dump();
    // The check ran mid-load if big.bin is still loading after it.
    const json after = b.admin("list");
    for (const json& row : after["models"]) {
      if (row["name"] == "big.bin" && row["state"] == "loading") caught = true;
    }
    const auto r = w.recv();
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE((*r)["ok"].get<bool>()) << r->dump();
    EXPECT_TRUE(problems(b).empty());
    if (caught) break;
  }
  if (!caught) GTEST_SKIP() << "every selfcheck ran after its load had finished (a busy host)";
}

TEST(Selfcheck, PinSurvivesARestartAfterAGenerationChange) {
  ScratchDir models;
  models.write_random("a.bin", 3 * kMiB, 1);
  Broker b(models.path());
  b.start();
  ASSERT_TRUE(b.admin("load", {{"model", "a.bin"}, {"pin", true}})["ok"].get<bool>());
  models.write_random("a.bin", 4 * kMiB, 2);  // a new generation inherits the pin
  json r = b.admin("load", {{"model", "a.bin"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  ASSERT_EQ(r["generation"], 2);
  ASSERT_TRUE(r["pinned"].get<bool>());
  EXPECT_TRUE(problems(b).empty()) << problems(b).dump();
  b.kill9();
  b.start();
  json rows = b.admin("list")["models"];
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0]["generation"], 2);
  EXPECT_TRUE(rows[0]["pinned"].get<bool>()) << "the pin is sticky across restarts";
}

TEST(AdoptGrace, AdoptedModelsAreNotEvictedForRoomDuringTheGracePeriod) {
  ScratchDir models;
  models.write_random("a.bin", 10 * kMiB, 1);  // 10 MiB extent
  models.write_random("b.bin", 7 * kMiB, 2);   // 8 MiB extent: both do not fit
  const std::vector<std::string> small = {"--memory", "16MiB"};
  Broker first(models.path(), small);
  first.start();
  ASSERT_TRUE(first.admin("load", {{"model", "a.bin"}})["ok"].get<bool>());
  first.kill9();

  auto with = [&](const char* grace) {
    auto args = small;
    args.insert(args.end(), {"--adopt-grace", grace});
    return args;
  };
  // Both stay in scope: a fixture removes the segment when it goes away.
  Broker graced(models.path(), with("3600"), first.pool());
  graced.start();
  Conn g(graced.worker_socket());
  json full = *g.request({{"op", "acquire"}, {"model", "b.bin"}});
  EXPECT_EQ(full["error"]["code"], "pool_full") << full.dump();
  EXPECT_NE(full["error"]["message"].get<std::string>().find("grace"), std::string::npos)
      << full.dump();
  ASSERT_EQ(graced.admin("list")["models"].size(), 1U);
  graced.kill9();

  Broker ungraced(models.path(), with("0"), first.pool());
  ungraced.start();
  Conn w(ungraced.worker_socket());
  json r = *w.request({{"op", "acquire"}, {"model", "b.bin"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  json rows = ungraced.admin("list")["models"];
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0]["name"], "b.bin");
  EXPECT_TRUE(ungraced.admin("selfcheck").value("consistent", false));
}

}  // namespace
}  // namespace modelpool::fault
