// File: tests/budget/churn_test.cc
//
// No fragmentation failures, through the real broker: hundreds of loads and
// evictions of mixed sizes while long-lived holders sit scattered over the
// offset space. Every load that fits the budget must succeed, the holders'
// bytes must stay intact, and stats must account for resident bytes, the
// budget and the offset space used.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "budget_util.hpp"
#include "modelpool/client.hpp"

namespace modelpool::testing {
namespace {

constexpr int kModels = 28;
constexpr int kSteps = 400;
constexpr std::uint64_t kBudget = 64 * kMiB;
constexpr std::uint64_t kHeldCap = 24 * kMiB;  // long-lived holders never hold more
constexpr std::uint64_t kAlign = 2 * kMiB;     // extents are whole 2 MiB units

std::uint64_t extent_of(std::uint64_t size) { return (size + kAlign - 1) / kAlign * kAlign; }

TEST(Churn, MixedLoadsWithScatteredHoldersNeverFailForFragmentation) {
  ScratchDir models;
  const std::uint64_t sizes_mib[] = {1, 2, 3, 5, 7, 9, 11};
  std::vector<std::string> names;
  std::vector<std::uint64_t> sizes;
  for (int i = 0; i < kModels; ++i) {
    names.push_back("m" + std::to_string(i));
    // Not page multiples either: each model ends somewhere inside its extent.
    sizes.push_back(sizes_mib[i % 7] * kMiB - static_cast<std::uint64_t>(i) * 1000);
    models.write_random(names.back(), sizes.back(), static_cast<std::uint32_t>(i + 1));
  }
  // Default watermarks (0.85/0.70) stay on: eviction for room and by
  // watermark both run during the churn.
  Broker broker(models.path(), {"--memory", "64MiB"});
  broker.start();
  const std::uint64_t catalog_bytes = segment_resident_bytes(broker);  // header and catalog
  Client client = Client::connect(broker.worker_socket());

  std::mt19937 rng(42);
  std::map<int, Model> held;  // model index -> long-lived view
  std::uint64_t held_bytes = 0;
  for (int step = 0; step < kSteps; ++step) {
    const int pick = static_cast<int>(rng() % kModels);
    try {
      if (step % 16 == 0) {
        // Rotate the holders: drop a random one, keep a new one.
        if (held.size() >= 3) {
          auto victim = std::next(held.begin(), static_cast<std::ptrdiff_t>(rng() % held.size()));
          held_bytes -= extent_of(sizes[static_cast<std::size_t>(victim->first)]);
          held.erase(victim);
        }
        const std::uint64_t ext = extent_of(sizes[static_cast<std::size_t>(pick)]);
        if (held.count(pick) == 0 && held_bytes + ext <= kHeldCap) {
          held.emplace(pick, client.acquire(names[static_cast<std::size_t>(pick)]));
          held_bytes += ext;
          continue;
        }
      }
      Model m = client.acquire(names[static_cast<std::size_t>(pick)]);
      ASSERT_EQ(m.size(), sizes[static_cast<std::size_t>(pick)]);
    } catch (const Error& e) {
      FAIL() << "step " << step << ": acquire " << names[static_cast<std::size_t>(pick)] << " with "
             << held_bytes / kMiB << " MiB held failed: " << e.code_name() << ": " << e.what();
    }
    if (step % 50 == 0) {
      json s = broker.admin("stats");
      ASSERT_LE(s["bytes_used"].get<std::uint64_t>(), kBudget) << "step " << step;
    }
  }

  for (const auto& [index, model] : held) {
    const std::string want =
        read_file(models.path() + "/" + names[static_cast<std::size_t>(index)]);
    auto b = model.bytes();
    ASSERT_EQ(b.size(), want.size());
    EXPECT_EQ(std::memcmp(b.data(), want.data(), want.size()), 0)
        << names[static_cast<std::size_t>(index)] << " changed under its holder";
  }
  json stats = broker.admin("stats");
  const auto loads = stats["loads"].get<std::uint64_t>();
  EXPECT_GE(loads, 150U) << "the churn should reload most of the time";
  EXPECT_EQ(stats["load_failures"], 0);
  EXPECT_GE(stats["evictions"].get<std::uint64_t>() + stats["models"].size(), loads);
  EXPECT_EQ(stats["bytes_budget"], kBudget);
  const auto used = stats["bytes_used"].get<std::uint64_t>();
  EXPECT_LE(used, kBudget);
  EXPECT_GE(used, held_bytes);
  EXPECT_LE(stats["offset_space_used"].get<std::uint64_t>(),
            stats["offset_space"].get<std::uint64_t>());
  EXPECT_GE(stats["offset_space_used"].get<std::uint64_t>(), used);
  EXPECT_GE(stats["largest_free_extent"].get<std::uint64_t>(), 12 * kMiB);
  // Everything evicted went back to the OS: the segment holds the resident
  // extents and its catalog, nothing more.
  EXPECT_EQ(segment_resident_bytes(broker), catalog_bytes + used);
  EXPECT_EQ(self_check_problems(broker), json::array());
}

}  // namespace
}  // namespace modelpool::testing
