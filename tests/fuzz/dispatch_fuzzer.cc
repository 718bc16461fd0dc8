// File: tests/fuzz/dispatch_fuzzer.cc
//
// Fuzz target for the broker's request path past the frame decoder: the
// Dispatcher, and through it the Service, Pool and Segment, in process, on a
// real segment in /dev/shm and a models directory of three small files. One
// input is a batch of requests, one per line: a line that starts with '!'
// goes to an admin session, any other to a worker session (so worker ops,
// admin ops and admin ops on the worker socket are all reached). After the
// batch, loads in flight finish, both sessions disconnect, and the broker
// must hold: no crash, every reply a frame whose JSON has a boolean "ok",
// no handle left, and the self-check consistent.
//
// It has libFuzzer's entry point, and the regular build links it with
// fuzz_replay_main.cc (modelpool_fuzz_dispatch, tests/fuzz/CMakeLists.txt),
// which replays a corpus or mutates it for a bounded time without libFuzzer.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "broker/config.hpp"
#include "broker/server/reports.hpp"
#include "broker/store/loader.hpp"
#include "tests/service/in_process_broker.hpp"

namespace modelpool::broker {
namespace {

using nlohmann::json;

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "contract broken: %s\n", what.c_str());
  std::abort();
}

Config fuzz_config() {
  Config c;
  c.policy.budget = 4 << 20;
  c.catalog_capacity = 8;
  c.adopt_grace_s = 0;
  c.max_outbound_bytes = 1 << 20;
  return c;
}

Loader::Options loader_options() {
  Loader::Options lo;
  lo.use_io_uring = false;
  return lo;
}

using Client = testing::InProcessBroker::Client;

// One broker, built once per process and reused by every input.
struct Harness {
  Harness() {
    auto logger =
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
    logger->set_level(spdlog::level::trace);  // every log line is still formatted
    spdlog::set_default_logger(logger);
    broker.write("a.bin", 4096);
    broker.write("b.bin", 70000);
    broker.write("big.bin", 3 << 20);  // more than the free budget once a.bin and b.bin are pinned
  }

  // Reads what the broker wrote; every reply must be a frame of JSON with "ok".
  void drain(Client& c) {
    for (const json& reply : broker.replies(c)) {
      if (!reply.is_object() || !reply.contains("ok") || !reply["ok"].is_boolean()) {
        broken("a reply without a boolean ok: " + reply.dump().substr(0, 200));
      }
    }
  }

  // Runs ready handlers until loads in flight are done (bounded).
  void settle(Client& w, Client& a) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    do {
      broker.poll();
      drain(w);
      drain(a);
      if (broker.service().loads_in_flight() == 0) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } while (std::chrono::steady_clock::now() < until);
  }

  void run(std::string_view input) {
    auto w = broker.connect(false);
    auto a = broker.connect(true);
    int lines = 0;
    while (!input.empty() && lines++ < 64) {
      const std::size_t nl = input.find('\n');
      std::string_view line = input.substr(0, nl);
      input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
      const bool admin = !line.empty() && line.front() == '!';
      if (admin) line.remove_prefix(1);
      Client& c = admin ? *a : *w;
      if (line.empty() || c.session->closed()) continue;
      const std::string payload(line);  // the session's buffer owns it in the broker
      broker.dispatcher().handle(c.session, payload);
      settle(*w, *a);
    }
    settle(*w, *a);
    w->session->close(nullptr);
    a->session->close(nullptr);
    settle(*w, *a);
    Service& service = broker.service();
    service.collect_all_releases();
    const StatsReport stats = service.stats(0);
    if (stats.handles != 0) {
      broken("handles left after every client left: " + std::to_string(stats.handles));
    }
    const SelfCheck check = service.selfcheck();
    if (!check.consistent()) broken("self-check: " + check.problems.front());
    // Back to a known state for the next input: nothing pinned, nothing resident.
    for (const char* m : {"a.bin", "b.bin", "big.bin"}) (void)service.set_pinned(m, false);
    (void)service.clear();
    broker.poll();
  }

  Loader loader{loader_options()};
  testing::InProcessBroker broker{"fuzz-dispatch", fuzz_config(), loader};
};

}  // namespace
}  // namespace modelpool::broker

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static modelpool::broker::Harness harness;
  harness.run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
