// File: bench/eviction/eviction_main.cc
//
// mp_bench_eviction: replays Zipf traces through every policy the broker
// offers (make_eviction_policy) and through Belady-size, at a byte budget
// that is a fraction of all models' bytes.
//   mp_bench_eviction [--alpha 1.0] [--models 50] [--requests 100000]
//                     [--budget-fraction 0.2] [--seed 1]
//                     [--min-size 64MiB] [--max-size 16GiB]
// Emits eviction/{hit_rate,byte_hit_rate,evictions} per policy, labelled
// with alpha and seed.
#include <string>

#include "bench/common/bench_util.hpp"
#include "bench/eviction/trace.hpp"

namespace mb = modelpool::bench;

int main(int argc, char** argv) {
  mb::Args args(argc, argv);
  const double alpha = args.num("alpha", 1.0);
  const auto models = static_cast<int>(args.num("models", 50));
  const auto requests = static_cast<std::size_t>(args.num("requests", 100000));
  const double fraction = args.num("budget-fraction", 0.2);
  const auto seed = static_cast<std::uint64_t>(args.num("seed", 1));
  const mb::Trace trace =
      mb::make_zipf_trace(models, requests, alpha, args.size("min-size", 64ull << 20),
                          args.size("max-size", 16ull << 30), seed);
  const auto budget =
      static_cast<std::uint64_t>(fraction * static_cast<double>(trace.total_bytes()));

  auto report = [&](std::string_view policy, const mb::ReplayResult& r) {
    const nlohmann::json labels = {{"policy", policy},    {"alpha", alpha},
                                   {"seed", seed},        {"models", models},
                                   {"budget", budget},    {"total_bytes", trace.total_bytes()},
                                   {"requests", requests}};
    mb::emit("eviction", "hit_rate", r.hit_rate(), "fraction", labels);
    mb::emit("eviction", "byte_hit_rate", r.byte_hit_rate(), "fraction", labels);
    mb::emit("eviction", "evictions", static_cast<double>(r.evictions), "count", labels);
  };
  for (std::string_view name : modelpool::broker::eviction_policy_names()) {
    auto policy = modelpool::broker::make_eviction_policy(name);
    if (!policy) mb::die("make_eviction_policy(\"" + std::string(name) + "\") returned null");
    report(name, mb::replay_policy(trace, budget, *policy));
  }
  report("belady", mb::replay_belady(trace, budget, false));
  report("belady-x-size", mb::replay_belady(trace, budget, true));
  return 0;
}
