// File: tests/fault/chaos/chaos_end.cc
//
// The end of a chaos run: the clients stop and release; once they are gone
// no handle is left, `clear` brings bytes_used back to the pinned baseline
// and nothing else stays resident in the segment; one more SIGKILL and
// restart re-adopts the pinned model without a load; SIGTERM exits 0 and
// leaves the lock free. Then the summary.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "chaos_run.hpp"
#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::chaos {

using Clock = std::chrono::steady_clock;
using units::format_bytes;

Scratch::Scratch(std::string dir, std::string segment, bool keep)
    : dir_(std::move(dir)), segment_(std::move(segment)), keep_(keep) {}

Scratch::~Scratch() {
  ::unlink(segment_.c_str());
  std::error_code ec;
  if (!keep_) std::filesystem::remove_all(dir_, ec);
}

Shared* map_shared() {
  void* p =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("mmap of the shared counters failed");
  return new (p) Shared{};  // anonymous memory is zeroed; value-init says so too
}

void expect_consistent(const BrokerProcess& broker, Report& report, const std::string& when) {
  ++report.selfchecks;
  auto r = broker.admin("selfcheck");
  if (r && r->value("consistent", false)) return;
  if (!r) return report.fail("selfcheck " + when + ": no reply");
  for (const auto& p : (*r)["problems"]) report.fail("selfcheck " + when + ": " + p.dump());
}

void Run::stop_clients() {
  shared->stop = true;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  auto reap = [&](pid_t& pid, const std::string& who) {
    if (pid <= 0) return;
    int st = 0;
    pid_t done = 0;
    while ((done = ::waitpid(pid, &st, WNOHANG)) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (done == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      report.fail(who + " did not stop within 20 s");
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      report.fail(who + " ended with wait status " + std::to_string(st));
    }
    pid = -1;
  };
  for (std::size_t i = 0; i < clients.size(); ++i) reap(clients[i], "client " + std::to_string(i));
  for (std::size_t i = 0; i < holders.size(); ++i) reap(holders[i], "holder " + std::to_string(i));
}

void Run::check_drained(BrokerProcess& broker) {
  fault::Conn ctl(layout::admin_socket_path(run_dir, pool));
  std::optional<fault::json> s;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  do {
    s = ctl.request({{"op", "stats"}});
  } while (s && ((*s)["clients"] != 1 || (*s)["handles"] != 0) && Clock::now() < deadline);
  if (!s) return report.fail("no stats from the broker at the end");
  report.end_handles = (*s)["handles"];
  if ((*s)["clients"] != 1 || report.end_handles != 0) {
    report.fail("every client left, yet the broker has " + (*s)["clients"].dump() +
                " clients and " + std::to_string(report.end_handles) + " handles");
  }
  fault::SegmentView v(segment);
  fault::Ranges pinned;
  for (const auto& r : v.rows()) {
    if (!r.pinned) continue;
    pinned.emplace_back(r.offset, r.offset + r.pages());
    report.pinned_baseline += r.pages();
  }
  // A superseded generation a holder mapped is retained until the broker
  // reaps it (every 500 ms once unlocked): clear until only the pin is left.
  const auto reaped_by = Clock::now() + std::chrono::seconds(5);
  do {
    ctl.request({{"op", "clear"}});
    s = ctl.request({{"op", "stats"}});
    if (s && (*s)["bytes_used"] == report.pinned_baseline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (Clock::now() < reaped_by);
  report.end_bytes_used = s ? (*s)["bytes_used"].get<std::uint64_t>() : 0;
  report.end_resident = v.held_bytes();
  report.end_checked = true;
  if (report.end_bytes_used != report.pinned_baseline || pinned.size() != 1) {
    report.fail("after clear, bytes_used is " + format_bytes(report.end_bytes_used) +
                ", the pinned baseline " + format_bytes(report.pinned_baseline));
  }
  if (report.end_resident != report.pinned_baseline ||
      fault::SegmentView::uncovered(v.written_ranges(), pinned) != 0) {
    report.fail("after clear, " + format_bytes(report.end_resident) +
                " of memory held in the segment, the pinned baseline " +
                format_bytes(report.pinned_baseline));
  }
  expect_consistent(broker, report, "at the end");
}

void Run::check_final_restart(BrokerProcess& broker) {
  std::string crash;
  if (!broker.kill9(&crash)) report.fail("the last incarnation: " + crash);
  for (const auto& name : reloads_of_adopted(broker.log_path(), adopted)) {
    report.fail("the last incarnation read adopted " + name + " from disk again");
  }
  const DeadSegment dead = inspect_dead_segment(segment, models, report);
  std::string why;
  if (!broker.start(&why)) return report.fail("the final restart failed: " + why);
  const AdoptionLine a = parse_adoption(broker.log_path());
  if (a.kept != static_cast<int>(dead.ready.size()) || dead.ready.size() != 1) {
    report.fail("the final restart adopted " + std::to_string(a.kept) +
                " models, expected the pinned one");
  }
  auto stats = broker.admin("stats");
  if (!stats || (*stats)["loads"] != 0) report.fail("the final restart loaded a model");
  expect_consistent(broker, report, "after the final restart");
  const int st = broker.terminate();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    report.fail("SIGTERM: modelpoold ended with wait status " + std::to_string(st));
  }
  const int fd = ::open(layout::lock_path(run_dir, pool).c_str(), O_RDWR | O_CLOEXEC);
  report.lock_free = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (fd >= 0) ::close(fd);
  if (!report.lock_free) report.fail("the pool's lock is still held after the broker exited");
  if (::access(layout::worker_socket_path(run_dir, pool).c_str(), F_OK) == 0) {
    report.fail("the worker socket outlived the broker");
  }
}

int Run::finish(BrokerProcess& broker, bool alive) {
  stop_clients();
  if (alive) {
    check_drained(broker);
    check_final_restart(broker);
  }
  ClientCounters t{};
  for (const ClientCounters& c : shared->clients) {
    for (auto [sum, part] : {std::pair{&t.acquires, &c.acquires},
                             {&t.pool_full, &c.pool_full},
                             {&t.other_errors, &c.other_errors},
                             {&t.releases, &c.releases},
                             {&t.checked_reads, &c.checked_reads},
                             {&t.reads_while_down, &c.reads_while_down},
                             {&t.wrong_bytes, &c.wrong_bytes},
                             {&t.reconnects, &c.reconnects},
                             {&t.reacquired_same, &c.reacquired_same},
                             {&t.reacquired_moved, &c.reacquired_moved},
                             {&t.dropped_held, &c.dropped_held},
                             {&t.timeouts, &c.timeouts},
                             {&t.spawned, &c.spawned}}) {
      sum->fetch_add(part->load());
    }
  }
  if (t.wrong_bytes > 0) {
    report.fail("a client read wrong bytes: " + std::string(shared->first_wrong));
  }
  if (t.timeouts > 0) {
    report.fail(std::to_string(t.timeouts.load()) + " requests got no reply within 10 s");
  }
  if (t.other_errors > 0) {
    report.fail(std::to_string(t.other_errors.load()) + " unexpected error replies");
  }
  if (t.checked_reads == 0) report.fail("no client ever checked a read");
  std::uint64_t holder_reads = 0, holder_wrong = 0;
  for (int i = 0; i < kHolders; ++i) {
    const HolderCounters& h = shared->holders[i];
    holder_reads += h.reads.load();
    holder_wrong += h.wrong_bytes.load();
    if (holders.size() > static_cast<std::size_t>(i) && h.reads.load() == 0 &&
        (i == 0 || report.replaced > 0)) {
      report.fail("holder " + std::to_string(i) + " never read its bytes");
    }
  }
  if (report.replaced > 0 && report.superseded_mapped == 0) {
    report.fail("no kill left the replaced generation superseded while its holder mapped it");
  }
  if (holder_wrong > 0) {
    report.fail(std::to_string(holder_wrong) + " holder reads saw wrong bytes (the first report: " +
                std::string(shared->first_wrong) + ")");
  }
  auto n = [](const std::atomic<std::uint64_t>& v) {
    return static_cast<unsigned long long>(v.load());
  };
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("chaos: %d broker kills (%d restarts), %d client kills, %d admin evictions\n",
              report.kills, report.restarts, report.client_kills, report.admin_evictions);
  std::printf(
      "  kills mid-load: %d (%d half-loaded entries dropped); kills leaving unpunched bytes: %d "
      "(%s, "
      "punched at restart)\n",
      report.kills_mid_load, report.loading_dropped, report.kills_with_stranded_bytes,
      format_bytes(report.stranded_bytes).c_str());
  std::printf(
      "  READY entries re-adopted: %d (bytes checked against their checksums: %d); reloads of "
      "adopted models: %d; self-checks: %d\n",
      report.ready_adopted, report.ready_verified, report.reloads, report.selfchecks);
  std::printf(
      "  clients (%llu processes): %llu acquires (%llu pool_full, %llu other errors), %llu "
      "releases\n",
      n(t.spawned), n(t.acquires), n(t.pool_full), n(t.other_errors), n(t.releases));
  std::printf("  reads checked: %llu (%llu while the broker was down); wrong bytes: %llu\n",
              n(t.checked_reads), n(t.reads_while_down), n(t.wrong_bytes));
  std::printf(
      "  holders (never re-acquire): %llu reads, wrong bytes: %llu; file replaced under a "
      "holder: %d; kills leaving a mapped superseded generation: %d\n",
      u(holder_reads), u(holder_wrong), report.replaced, report.superseded_mapped);
  std::printf(
      "  reconnects: %llu; handles re-acquired: %llu in place, %llu moved, %llu dropped; timeouts: "
      "%llu\n",
      n(t.reconnects), n(t.reacquired_same), n(t.reacquired_moved), n(t.dropped_held),
      n(t.timeouts));
  if (report.end_checked) {
    std::printf(
        "  end: %llu handles; bytes_used %s (pinned baseline %s); the segment's data region "
        "holds %s; lock %s\n",
        u(report.end_handles), format_bytes(report.end_bytes_used).c_str(),
        format_bytes(report.pinned_baseline).c_str(), format_bytes(report.end_resident).c_str(),
        report.lock_free ? "free" : "HELD");
  }
  for (const auto& p : report.problems) std::printf("  PROBLEM: %s\n", p.c_str());
  std::printf("chaos: %s (seed %llu)\n", report.problems.empty() ? "PASS" : "FAIL", u(seed));
  std::fflush(stdout);
  ::munmap(shared, sizeof(Shared));
  shared = nullptr;
  return report.problems.empty() ? 0 : 1;
}

}  // namespace modelpool::chaos
