// File: bench/control/acquire_bench.cc
//
// mp_bench_acquire: the control plane's warm path. T threads, each with its
// own Client (its own connection), repeat acquire + release of models that
// are already resident for `--seconds`, timing every pair; the model is
// `--model`, or one chosen at random per iteration from --count names
// printf(--pattern, i) (the scaling scenario).
//   mp_bench_acquire --socket S (--model M | --pattern P --count N)
//                    [--threads 1] [--seconds 1] [--release-ring 1]
// --release-ring 0 sends every release as a frame instead of through the
// release ring.
// Emits acquire/{pair_p50,pair_p99,pair_p999,acquire_p50,release_p50} (ns)
// and acquire/ops (acquire+release pairs per second, all threads).
#include <atomic>
#include <cstdio>
#include <modelpool/client.hpp>
#include <random>
#include <thread>
#include <vector>

#include "bench/common/bench_util.hpp"

namespace mb = modelpool::bench;

namespace {

struct Samples {
  std::vector<std::int64_t> pair, acquire, release;
};

std::vector<std::string> model_names(const mb::Args& a) {
  if (a.has("model")) return {a.str("model")};
  const std::string pattern = a.required("pattern");
  const auto count = static_cast<int>(a.num("count", 1));
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) {
    char buf[256];
    std::snprintf(buf, sizeof buf, pattern.c_str(), i);
    names.emplace_back(buf);
  }
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  mb::Args args(argc, argv);
  const std::string socket = args.required("socket");
  const auto threads = static_cast<int>(args.num("threads", 1));
  const auto duration = static_cast<std::int64_t>(args.num("seconds", 1.0) * 1e9);
  const std::vector<std::string> names = model_names(args);

  std::vector<Samples> samples(threads);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> failed{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      try {
        modelpool::ClientOptions options;
        options.release_ring = args.num("release-ring", 1) != 0;
        auto client = modelpool::Client::connect(socket, options);
        std::mt19937 rng(static_cast<unsigned>(t) + 1);
        std::uniform_int_distribution<std::size_t> pick(0, names.size() - 1);
        { auto warm = client.acquire(names[0]); }  // maps the segment once
        Samples& s = samples[t];
        s.pair.reserve(1 << 20);
        ++ready;
        while (!go.load()) std::this_thread::yield();
        const std::int64_t end = mb::now_ns() + duration;
        for (std::int64_t t0 = mb::now_ns(); t0 < end;) {
          modelpool::Model m = client.acquire(names[pick(rng)]);
          const std::int64_t t1 = mb::now_ns();
          m.release();
          const std::int64_t t2 = mb::now_ns();
          s.pair.push_back(t2 - t0);
          s.acquire.push_back(t1 - t0);
          s.release.push_back(t2 - t1);
          t0 = t2;
        }
      } catch (const modelpool::Error& e) {
        std::fprintf(stderr, "mp_bench_acquire: %s: %s\n", std::string(e.code_name()).c_str(),
                     e.what());
        failed = true;
        ++ready;
      }
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const std::int64_t t0 = mb::now_ns();
  go = true;
  for (auto& w : workers) w.join();
  const double secs = static_cast<double>(mb::now_ns() - t0) / 1e9;
  if (failed) return 1;

  Samples all;
  for (auto& s : samples) {
    all.pair.insert(all.pair.end(), s.pair.begin(), s.pair.end());
    all.acquire.insert(all.acquire.end(), s.acquire.begin(), s.acquire.end());
    all.release.insert(all.release.end(), s.release.begin(), s.release.end());
  }
  const nlohmann::json labels = {{"threads", threads}, {"models", names.size()}};
  mb::emit("acquire", "ops", static_cast<double>(all.pair.size()) / secs, "ops/s", labels);
  mb::emit("acquire", "pair_p50", mb::percentile(all.pair, 0.50), "ns", labels);
  mb::emit("acquire", "pair_p99", mb::percentile(all.pair, 0.99), "ns", labels);
  mb::emit("acquire", "pair_p999", mb::percentile(all.pair, 0.999), "ns", labels);
  mb::emit("acquire", "acquire_p50", mb::percentile(all.acquire, 0.50), "ns", labels);
  mb::emit("acquire", "release_p50", mb::percentile(all.release, 0.50), "ns", labels);
  return 0;
}
