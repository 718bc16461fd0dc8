// File: tests/fault/chaos/chaos_main.cc
//
// modelpool_chaos: sets up models and a pool, runs the clients, kills and
// restarts the broker round after round (see chaos.hpp), then checks the end
// state and prints the summary (chaos_end.cc). Random delays choose the kill
// moments; no check depends on them.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "chaos_run.hpp"
#include "shm/layout/paths.hpp"

namespace modelpool::chaos {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::map<std::string, Model> make_models(const std::string& dir, std::mt19937_64& rng) {
  fs::create_directories(dir);
  std::map<std::string, Model> models;
  auto add = [&](const std::string& name, std::uint64_t size, bool pinned) {
    std::string bytes(size, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    std::ofstream(dir + "/" + name, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(size));
    models[name] = Model{0, name, size, fault::xxh3(bytes.data(), size), pinned};
  };
  auto between = [&](std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  for (int i = 0; i < 16; ++i) {
    char name[32];  // room for any int: the optimiser cannot see i < 16
    std::snprintf(name, sizeof name, "m%02d.bin", i);
    const std::uint64_t size = i < 4    ? between(128 << 10, 1 << 20)
                               : i < 14 ? between(1 << 20, 5 << 20)
                                        : between(8 << 20, 10 << 20);
    add(name, size, false);
  }
  add("pinned.bin", 3 << 19, true);
  add("held.bin", 4 << 20, false);  // only holder 0 acquires it
  add("swap.bin", 3 << 20, false);  // only holder 1, and replace_file
  return models;
}

// The second version of swap.bin: same size, other bytes.
std::string second_version(const Model& m, std::mt19937_64& rng) {
  std::string bytes(m.size, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

}  // namespace

Run::Run(const Options& options, std::uint64_t s) : o(options), seed(s), rng(s) {}

Run::~Run() {
  clients.insert(clients.end(), holders.begin(), holders.end());
  for (pid_t& pid : clients) {
    if (pid <= 0) continue;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

void Run::respawn(int i) {
  clients[static_cast<std::size_t>(i)] = spawn_client(
      i, rng(), layout::worker_socket_path(run_dir, pool), client_models, o.grace_s, shared);
}

bool Run::anyone_may_hold(const Model& m) const {
  for (int i = 0; i < o.clients; ++i) {
    if ((shared->may_hold[i].load() >> m.index) & 1) return true;
  }
  return false;
}

void Run::uptime(BrokerProcess& broker) {
  const auto started = Clock::now();
  const auto until = started + std::chrono::milliseconds(between(o.min_uptime_ms, o.max_uptime_ms));
  bool kill_client = between(0, 2) == 0;
  while (Clock::now() < until) {
    sleep_ms(between(5, 60));
    const int dice = between(0, 99);
    // Admin evictions ignore the grace period, which is what protects a
    // client's mapping of an adopted model until it has re-acquired it:
    // within it, an adopted model is evicted only when no client may hold it.
    const bool past_grace = Clock::now() >= started + std::chrono::seconds(o.grace_s);
    const Model& m = client_models[static_cast<std::size_t>(
        between(0, static_cast<int>(client_models.size()) - 1))];
    if (dice < 30 && (past_grace || adopted.count(m.name) == 0 || !anyone_may_hold(m))) {
      auto r = broker.admin("evict", {{"model", m.name}});
      if (r && r->value("ok", false)) ++report.admin_evictions;
    } else if (dice < 33 && past_grace) {
      broker.admin("clear");
    } else if (dice < 36) {
      // The holders' models: refused while a holder maps them, whatever
      // the grace period (a replaced generation's current one may go).
      const bool held = between(0, 1) == 0;
      auto r = broker.admin("evict", {{"model", held ? "held.bin" : "swap.bin"}});
      if (held && r && r->value("ok", false)) {
        report.fail("admin evict of held.bin succeeded while holder 0 maps it");
      }
    } else if (kill_client && dice < 50) {
      const auto i = static_cast<std::size_t>(between(0, o.clients - 1));
      ::kill(clients[i], SIGKILL);
      ::waitpid(clients[i], nullptr, 0);
      ++report.client_kills;
      respawn(static_cast<int>(i));
      kill_client = false;
    }
  }
}

void Run::start_holder(int index, const std::string& name) {
  holders[static_cast<std::size_t>(index)] =
      spawn_holder(index, layout::worker_socket_path(run_dir, pool), models.at(name), shared);
  const auto deadline = Clock::now() + std::chrono::seconds(25);
  while (shared->holders[index].generation.load() == 0 &&
         shared->holders[index].errors.load() == 0 && Clock::now() < deadline) {
    sleep_ms(5);
  }
  if (shared->holders[index].generation.load() == 0) {
    report.fail("holder " + std::to_string(index) + " could not acquire " + name);
  }
}

void Run::replace_file() {
  const Model& m = models.at("swap.bin");
  start_holder(1, m.name);
  const std::uint64_t held = shared->holders[1].generation.load();
  const std::string path = dir + "/models/" + m.name, tmp = dir + "/models/.swap.tmp";
  std::ofstream(tmp, std::ios::binary)
      .write(swap_v2.data(), static_cast<std::streamsize>(swap_v2.size()));
  fs::rename(tmp, path);
  swap_v2_handle = std::make_unique<fault::Conn>(layout::worker_socket_path(run_dir, pool));
  auto r = swap_v2_handle->request({{"op", "acquire"}, {"model", m.name}, {"wait_ms", 5000}},
                                   std::chrono::seconds(10));
  if (!r || !r->value("ok", false) || (*r)["generation"] != held + 1 ||
      (*r)["checksum"] != fault::hex16(m.alt_checksum)) {
    report.fail("replacing " + m.name + ": acquire of the new version answered " +
                (r ? r->dump() : std::string("nothing")));
  } else {
    ++report.replaced;  // its handle goes with the connection, at the next kill
  }
}

bool Run::round(BrokerProcess& broker) {
  if (report.kills == 1) replace_file();
  uptime(broker);
  std::string crash;
  if (!broker.kill9(&crash)) {
    report.fail("incarnation " + std::to_string(broker.incarnation()) + ": " + crash);
  }
  ++report.kills;
  swap_v2_handle.reset();
  for (const auto& name : reloads_of_adopted(broker.log_path(), adopted)) {
    ++report.reloads;
    report.fail("incarnation " + std::to_string(broker.incarnation()) + " read adopted " + name +
                " from disk again");
  }
  const DeadSegment dead = inspect_dead_segment(segment, models, report);
  report.superseded_mapped += dead.superseded_mapped;
  report.kills_mid_load += dead.loading > 0;
  report.loading_dropped += dead.loading;
  report.kills_with_stranded_bytes += dead.stranded > 0;
  report.stranded_bytes += dead.stranded;
  sleep_ms(between(0, o.max_downtime_ms));
  std::string why;
  if (!broker.start(&why)) {
    report.fail("restart after kill " + std::to_string(report.kills) + " failed: " + why);
    return false;
  }
  const auto ready_at = Clock::now();
  ++report.restarts;
  const AdoptionLine a = parse_adoption(broker.log_path());
  const int kept = static_cast<int>(dead.ready.size() - dead.droppable.size());
  if (!a.found || a.kept != kept || a.loading != dead.loading || a.invalid != 0) {
    report.fail("restart " + std::to_string(report.restarts) + ": expected " +
                std::to_string(kept) + " adopted and " + std::to_string(dead.loading) +
                " half-loaded dropped; its log says " +
                (a.found ? std::to_string(a.kept) + ", " + std::to_string(a.loading) + " and " +
                               std::to_string(a.invalid) + " invalid"
                         : "nothing"));
  }
  report.ready_adopted += a.kept;
  // Within the grace period nothing adopted can have been evicted yet.
  if (Clock::now() - ready_at < std::chrono::seconds(o.grace_s)) {
    check_readopted(segment, dead, report);
  }
  adopted.clear();
  for (const auto& r : dead.ready) adopted.insert(r.name);
  expect_consistent(broker, report, "after restart " + std::to_string(report.restarts));
  if (o.verbose) {
    std::printf("round %d: %zu READY adopted, %d half-loaded dropped, %llu stranded bytes\n",
                report.kills, dead.ready.size(), dead.loading,
                static_cast<unsigned long long>(dead.stranded));
  }
  return true;
}

namespace {

int run(const Options& o) {
  const std::uint64_t seed =
      o.seed != 0
          ? o.seed
          : static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) % 1000000007;
  Run r(o, seed);
  r.dir = "/tmp/mp-chaos-" + std::to_string(::getpid());
  r.pool = "mptest-chaos-" + std::to_string(::getpid());
  r.run_dir = r.dir + "/run";
  r.segment = "/dev/shm/" + r.pool;
  Scratch scratch(r.dir, r.segment, o.keep);
  r.models = make_models(r.dir + "/models", r.rng);
  Model& swap = r.models.at("swap.bin");
  r.swap_v2 = second_version(swap, r.rng);
  swap.alt_checksum = fault::xxh3(r.swap_v2.data(), r.swap_v2.size());
  for (const auto& [name, m] : r.models) {
    if (m.pinned || name == "held.bin" || name == "swap.bin") continue;
    r.client_models.push_back(m);
    r.client_models.back().index = static_cast<int>(r.client_models.size() - 1);
  }
  fs::create_directories(r.dir + "/logs");
  const std::string modelpoold =
      o.broker.empty() ? std::string(MODELPOOL_BINARY_DIR) + "/broker/modelpoold" : o.broker;
  BrokerProcess broker({modelpoold, "--models", r.dir + "/models", "--name", r.pool, "--run-dir",
                        r.run_dir, "--memory", "40MiB", "--adopt-grace", std::to_string(o.grace_s),
                        "--catalog-capacity", "64", "--log-level", "info", "--huge-tmpfs", "no"},
                       r.dir + "/logs", layout::admin_socket_path(r.run_dir, r.pool));
  std::printf("chaos: seed %llu, %d clients, %d rounds, budget 40 MiB, %zu models, grace %d s\n",
              static_cast<unsigned long long>(seed), o.clients, o.rounds, r.models.size(),
              o.grace_s);
  std::fflush(stdout);
  std::string why;
  if (!broker.start(&why)) {
    std::fprintf(stderr, "chaos: %s\n", why.c_str());
    return 1;
  }
  auto pinned = broker.admin("load", {{"model", "pinned.bin"}, {"pin", true}});
  if (!pinned || !pinned->value("ok", false)) r.report.fail("cannot preload and pin pinned.bin");
  r.shared = map_shared();
  r.clients.resize(static_cast<std::size_t>(o.clients));
  r.holders.assign(kHolders, -1);
  r.start_holder(0, "held.bin");
  for (int i = 0; i < o.clients; ++i) r.respawn(i);
  const auto deadline = Clock::now() + std::chrono::duration<double>(o.max_seconds);
  bool alive = true;
  while (alive && r.report.kills < o.rounds && Clock::now() < deadline) alive = r.round(broker);
  const int code = r.finish(broker, alive);
  if (code != 0) {
    scratch.keep();
    std::printf("chaos: models and broker logs kept in %s\n", r.dir.c_str());
  }
  return code;
}

}  // namespace
}  // namespace modelpool::chaos

int main(int argc, char** argv) {
  const auto options = modelpool::chaos::parse_options(argc, argv);
  try {
    return modelpool::chaos::run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chaos: %s\n", e.what());
    return 1;
  }
}
