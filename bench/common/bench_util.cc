// File: bench/common/bench_util.cc
#include "bench/common/bench_util.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace modelpool::bench {

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Args::Args(int argc, char** argv) {
  int i = 1;
  if (i < argc && std::strncmp(argv[i], "--", 2) != 0) command_ = argv[i++];
  for (; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.substr(0, 2) != "--") die("unexpected argument " + std::string(a));
    std::string key(a.substr(2));
    if (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0) {
      values_[key] = argv[++i];
    } else {
      values_[key] = "";
    }
  }
}

bool Args::has(std::string_view key) const { return values_.find(key) != values_.end(); }

std::string Args::str(std::string_view key, std::string_view fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? std::string(fallback) : it->second;
}

std::uint64_t Args::size(std::string_view key, std::uint64_t fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  // "64MiB", "1G", "4096": binary units, like the broker's --memory.
  char* end = nullptr;
  const double n = std::strtod(it->second.c_str(), &end);
  std::string unit(end);
  if (!unit.empty() && unit.back() == 'B') unit.pop_back();
  if (!unit.empty() && unit.back() == 'i') unit.pop_back();
  static const std::string kUnits = "KMGT";
  double mult = 1;
  if (!unit.empty()) {
    const auto pos = kUnits.find(unit);
    if (unit.size() != 1 || pos == std::string::npos) die("--" + std::string(key) + ": bad size");
    mult = std::pow(1024.0, static_cast<double>(pos + 1));
  }
  return static_cast<std::uint64_t>(n * mult);
}

double Args::num(std::string_view key, double fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : std::strtod(it->second.c_str(), nullptr);
}

std::string Args::required(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) die("missing --" + std::string(key));
  return it->second;
}

void emit(std::string_view bench, std::string_view metric, double value, std::string_view unit,
          const nlohmann::json& labels) {
  nlohmann::json j = {{"bench", bench}, {"metric", metric}, {"value", value}, {"unit", unit}};
  for (const auto& [k, v] : labels.items()) j[k] = v;
  std::string line = j.dump() + "\n";
  // One write(2) per line so concurrent emitters never interleave.
  if (::write(STDOUT_FILENO, line.data(), line.size()) < 0) die_errno("write stdout");
}

double percentile(std::vector<std::int64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(std::llround(p * static_cast<double>(v.size() - 1)));
  return static_cast<double>(v[std::min(idx, v.size() - 1)]);
}

void die_errno(std::string_view what) {
  std::fprintf(stderr, "bench: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               std::strerror(errno));
  std::exit(1);
}

void die(std::string_view what) {
  std::fprintf(stderr, "bench: %.*s\n", static_cast<int>(what.size()), what.data());
  std::exit(1);
}

std::uint64_t touch_pages(const std::byte* p, std::uint64_t n, std::uint64_t page) {
  std::uint64_t sum = 0;
  for (std::uint64_t off = 0; off < n; off += page) {
    sum += static_cast<std::uint64_t>(*(reinterpret_cast<const volatile std::uint8_t*>(p + off)));
  }
  if (n > 0) sum += static_cast<std::uint64_t>(p[n - 1]);
  return sum;
}

}  // namespace modelpool::bench
