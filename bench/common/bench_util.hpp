// File: bench/common/bench_util.hpp
//
// What every bench program shares: a monotonic clock comparable across
// processes (CLOCK_MONOTONIC, which Python's time.monotonic_ns() also reads),
// a tiny `--key value` argument parser, percentiles, and the output format:
// one JSON object per line per metric (leveldb db_bench style), e.g.
//   {"bench":"cold_start","metric":"all_bytes_ns","value":4.1e8,"unit":"ns","mode":"mmap"}
// The driver (bench/run_bench.py) reads these lines; anything else a program
// prints goes to stderr. Not thread-safe unless stated.
#ifndef MODELPOOL_BENCH_COMMON_BENCH_UTIL_HPP_
#define MODELPOOL_BENCH_COMMON_BENCH_UTIL_HPP_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace modelpool::bench {

// Nanoseconds of CLOCK_MONOTONIC.
std::int64_t now_ns();

// `--key value` pairs and bare `--flag`s after an optional leading
// subcommand. Unknown keys are allowed; a missing required key exits(2).
class Args {
 public:
  Args(int argc, char** argv);
  const std::string& command() const { return command_; }
  bool has(std::string_view key) const;
  std::string str(std::string_view key, std::string_view fallback = "") const;
  // Accepts sizes like "64MiB", "1G" (binary units) and plain integers.
  std::uint64_t size(std::string_view key, std::uint64_t fallback) const;
  double num(std::string_view key, double fallback) const;
  std::string required(std::string_view key) const;

 private:
  std::string command_;
  std::map<std::string, std::string, std::less<>> values_;
};

// Prints {"bench":..., "metric":..., "value":..., "unit":..., labels...} on
// one line to stdout and flushes. Thread-safe (one write per line).
void emit(std::string_view bench, std::string_view metric, double value, std::string_view unit,
          const nlohmann::json& labels = nlohmann::json::object());

// p in [0,1]; sorts `v` in place; 0 for an empty vector.
double percentile(std::vector<std::int64_t>& v, double p);

// Exits with status 1 after printing "bench: what: strerror(errno)".
[[noreturn]] void die_errno(std::string_view what);
[[noreturn]] void die(std::string_view what);

// Reads one byte per `page` bytes of [p, p+n) so every page is faulted in;
// returns their sum so the compiler keeps the loads.
std::uint64_t touch_pages(const std::byte* p, std::uint64_t n, std::uint64_t page = 4096);

}  // namespace modelpool::bench

#endif  // MODELPOOL_BENCH_COMMON_BENCH_UTIL_HPP_
