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
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "broker/config.hpp"
#include "broker/pool/pool.hpp"
#include "broker/server/dispatch.hpp"
#include "broker/server/service.hpp"
#include "broker/startup.hpp"
#include "broker/store/loader.hpp"
#include "broker/store/name_resolver.hpp"
#include "broker/store/segment.hpp"
#include "shm/protocol/frame.hpp"

namespace modelpool::broker {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "contract broken: %s\n", what.c_str());
  std::abort();
}

// One broker, built once per process and reused by every input.
struct Harness {
  Harness() {
    auto logger =
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
    logger->set_level(spdlog::level::trace);  // every log line is still formatted
    spdlog::set_default_logger(logger);
    dir = "/tmp/mp-fuzz-dispatch-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    write("a.bin", 4096);
    write("b.bin", 70000);
    write("big.bin", 3 << 20);  // more than the free budget once a.bin and b.bin are pinned
    config.models_dir = dir;
    config.pool = "mpfuzz-" + std::to_string(::getpid());
    config.policy.budget = 4 << 20;
    config.catalog_capacity = 8;
    config.adopt_grace_s = 0;
    config.max_outbound_bytes = 1 << 20;
    so.pool = config.pool;
    so.data_bytes = config.policy.budget * config.offset_space_factor;
    so.catalog_capacity = config.catalog_capacity;
    so.recreate = true;
    auto names_r = NameResolver::open(dir);
    auto seg_r = Segment::open(so, ::getpid());
    if (!names_r.ok() || !seg_r.ok()) broken("cannot set up the broker");
    names = std::make_unique<NameResolver>(std::move(names_r).value());
    const PoolConfig pc = pool_config(config, **seg_r);
    store = std::make_unique<CatalogStore>(std::move(seg_r).value(), pc);
    Loader::Options lo;
    lo.use_io_uring = false;
    loader = std::make_unique<Loader>(lo);
    service = std::make_unique<Service>(io, config, *store, *loader, *names);
    dispatcher = std::make_unique<Dispatcher>(*service, config, [this] { return sessions; });
  }
  ~Harness() {
    dispatcher.reset();
    service.reset();
    loader.reset();
    (void)Segment::remove(so);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  void write(const std::string& name, std::size_t size) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 131 + size);
    std::ofstream(dir + "/" + name, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(size));
  }

  struct Client {
    SessionPtr session;
    asio::local::stream_protocol::socket peer;
    proto::FrameDecoder replies;
  };

  std::unique_ptr<Client> connect(bool admin) {
    asio::local::stream_protocol::socket ours(io), theirs(io);
    asio::local::connect_pair(ours, theirs);
    theirs.non_blocking(true);
    ++sessions;
    auto s = std::make_shared<Session>(
        std::move(ours), next_id++, admin, config.max_outbound_bytes,
        [this](const SessionPtr& p, std::string_view payload) { dispatcher->handle(p, payload); },
        [this](Session& p) {
          service->disconnect(p);
          --sessions;
        });
    return std::make_unique<Client>(Client{std::move(s), std::move(theirs), {}});
  }

  // Reads what the broker wrote; every reply must be a frame of JSON with "ok".
  void drain(Client& c) {
    char buf[65536];
    boost::system::error_code ec;
    for (;;) {
      const std::size_t n = c.peer.read_some(asio::buffer(buf), ec);
      if (ec || n == 0) break;
      c.replies.feed(buf, n);
    }
    for (;;) {
      auto frame = c.replies.next();
      if (!frame.ok()) broken("a reply is not a valid frame: " + frame.status().message());
      if (!frame->has_value()) break;
      const json reply = json::parse(**frame, nullptr, false);
      if (reply.is_discarded() || !reply.is_object() || !reply.contains("ok") ||
          !reply["ok"].is_boolean()) {
        broken("a reply without a boolean ok: " + (*frame)->substr(0, 200));
      }
    }
  }

  // Runs ready handlers until loads in flight are done (bounded).
  void settle(Client& w, Client& a) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    do {
      io.poll();
      io.restart();
      drain(w);
      drain(a);
      if (service->loads_in_flight() == 0) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } while (std::chrono::steady_clock::now() < until);
  }

  void run(std::string_view input) {
    auto w = connect(false);
    auto a = connect(true);
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
      dispatcher->handle(c.session, payload);
      settle(*w, *a);
    }
    settle(*w, *a);
    w->session->close(nullptr);
    a->session->close(nullptr);
    settle(*w, *a);
    service->collect_all_releases();
    const StatsReport stats = service->stats(0);
    if (stats.handles != 0) {
      broken("handles left after every client left: " + std::to_string(stats.handles));
    }
    const SelfCheck check = service->selfcheck();
    if (!check.consistent()) broken("self-check: " + check.problems.front());
    // Back to a known state for the next input: nothing pinned, nothing resident.
    for (const char* m : {"a.bin", "b.bin", "big.bin"}) (void)service->set_pinned(m, false);
    (void)service->clear();
    io.poll();
    io.restart();
  }

  std::string dir;
  Config config;
  SegmentOptions so;
  asio::io_context io;
  std::unique_ptr<NameResolver> names;
  std::unique_ptr<CatalogStore> store;
  std::unique_ptr<Loader> loader;
  std::unique_ptr<Service> service;
  std::unique_ptr<Dispatcher> dispatcher;
  std::size_t sessions = 0;
  std::uint64_t next_id = 1;
};

}  // namespace
}  // namespace modelpool::broker

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static modelpool::broker::Harness harness;
  harness.run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
