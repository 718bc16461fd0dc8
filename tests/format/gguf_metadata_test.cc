// File: tests/format/gguf_metadata_test.cc
//
// GGUF metadata under a MetadataFilter: every value is validated whatever
// the filter, only the wanted ones become JSON, and a file with a 16M-element
// metadata array parses in bounded memory and time when its metadata is not
// wanted (what the broker's load check and a worker's tensor index do). The
// memory is measured as the peak RSS growth (ru_maxrss) of a forked child
// that parses, against the same for a header-only file.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/format/gguf_builder.hpp"

namespace modelpool::format::testing {
namespace {

constexpr std::uint64_t kBigArray = 16'000'000;  // the size of the report's array

// A GGUF with a name, an array of `n` u8 values and one F32 tensor.
std::string file_with_array(std::uint64_t n, std::uint32_t elem_type = kU8,
                            std::size_t elem_bytes = 1) {
  std::string values(n * elem_bytes, '\0');
  for (std::uint64_t i = 0; i < n * elem_bytes; i += elem_bytes)
    values[i] = static_cast<char>(i % 2);
  return GgufBuilder()
      .kv_str("general.name", "tiny")
      .kv("tokenizer.ggml.token_type", kArr, u32(elem_type) + u64(n) + values)
      .tensor("w", {8}, kF32, 0)
      .build(32);
}

std::int64_t max_rss_kib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

struct ParseCost {
  std::int64_t rss_growth_kib = -1;  // -1: the child failed to parse
  double seconds = 0;
};

// Parses `file` (already in memory) in a forked child, with no metadata
// wanted, and reports its peak RSS growth and its time through a pipe.
ParseCost parse_cost_in_child(const std::string& file) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const std::int64_t before = max_rss_kib();
    const auto start = std::chrono::steady_clock::now();
    auto r = parse_gguf(bytes_of(file), MetadataFilter::none());
    ParseCost cost;
    cost.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    cost.rss_growth_kib = r.ok() && r->tensors.size() == 1 ? max_rss_kib() - before : -1;
    (void)!::write(fds[1], &cost, sizeof cost);
    ::_exit(0);
  }
  ::close(fds[1]);
  ParseCost cost;
  EXPECT_EQ(::read(fds[0], &cost, sizeof cost), static_cast<ssize_t>(sizeof cost));
  ::close(fds[0]);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  return cost;
}

TEST(GgufMetadata, SixteenMillionElementArrayParsesInBoundedMemoryAndTime) {
  const std::string big = file_with_array(kBigArray);
  const std::string small = file_with_array(16);
  ASSERT_GT(big.size(), kBigArray);
  const ParseCost header_only = parse_cost_in_child(small);
  const ParseCost with_array = parse_cost_in_child(big);
  ASSERT_GE(header_only.rss_growth_kib, 0) << "the small file did not parse";
  ASSERT_GE(with_array.rss_growth_kib, 0) << "the big file did not parse";
  // Building the array as JSON took hundreds of MiB; now the growth is what
  // a header-only parse needs, give or take a few pages of allocator noise.
  EXPECT_LE(with_array.rss_growth_kib, 4 * header_only.rss_growth_kib + 4096)
      << "header-only parse grew " << header_only.rss_growth_kib << " KiB";
  EXPECT_LT(with_array.seconds, 1.0);
}

TEST(GgufMetadata, FilterBuildsOnlyWhatIsWanted) {
  const std::string file = file_with_array(1000);
  auto all = parse_gguf(bytes_of(file));
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  EXPECT_EQ(all->metadata["general.name"], "tiny");
  ASSERT_EQ(all->metadata["tokenizer.ggml.token_type"].size(), 1000U);
  EXPECT_EQ(all->metadata["tokenizer.ggml.token_type"][999], 1);

  auto none = parse_gguf(bytes_of(file), MetadataFilter::none());
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_TRUE(none->metadata.empty());
  ASSERT_EQ(none->tensors.size(), 1U);
  EXPECT_EQ(none->tensors[0].offset, all->tensors[0].offset);

  auto one = parse_gguf(bytes_of(file), MetadataFilter::only("general.name"));
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  EXPECT_EQ(one->metadata.dump(), R"({"general.name":"tiny"})");
}

TEST(GgufMetadata, ValuesLeftOutAreStillValidated) {
  // A bool of 2 inside an array, and an array whose last string is cut off.
  const std::string bad_bool =
      GgufBuilder().kv("b", kArr, u32(kBool) + u64(3) + std::string("\1\0\2", 3)).build(0);
  const std::string cut =
      GgufBuilder().kv("s", kArr, u32(kStr) + u64(2) + gguf_str("ok") + u64(100) + "x").build(0);
  for (const MetadataFilter& f : {MetadataFilter{}, MetadataFilter::none()}) {
    EXPECT_TRUE(fails_with(parse_gguf(bytes_of(bad_bool), f), "neither 0 nor 1"));
    EXPECT_TRUE(fails_with(parse_gguf(bytes_of(cut), f), "runs past the end of the file"));
  }
  // The number budget counts skipped arrays as it counts built ones.
  const std::string two_big =
      GgufBuilder()
          .kv("a", kArr, u32(kU8) + u64(9'000'000) + std::string(9'000'000, 0))
          .kv("b", kArr, u32(kU8) + u64(9'000'000) + std::string(9'000'000, 0))
          .build(0);
  EXPECT_TRUE(fails_with(parse_gguf(bytes_of(two_big), MetadataFilter::none()),
                         "exceeds the limit of 16777216 metadata values"));
}

}  // namespace
}  // namespace modelpool::format::testing
