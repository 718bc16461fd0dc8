// File: tests/fault/chaos/chaos.hpp
//
// The chaos driver (scripts/chaos.sh): N client processes acquire, read and
// verify random models under a tight budget while the driver SIGKILLs and
// restarts the broker at random moments and SIGKILLs clients at random. The
// clients count what they saw in shared memory (it survives a SIGKILLed
// client); the driver checks the segment each broker leaves behind and the
// pool each restart re-adopts, and prints a summary.
//
// The rule that makes "no client ever read wrong bytes" timing-independent:
// a client counts a read as checked when its handle was live to the end of
// the read (the broker that holds it had not hung up), or when the read
// ended less than --adopt-grace after the client last saw its broker alive
// (a restarted broker cannot evict an adopted entry sooner). Reads that end
// later are never attempted; a mismatch on a checked read is wrong bytes.
//
// Two holders (chaos_holder.cc) test the guarantee that does not depend on
// timing at all: each maps one model, takes the OFD read lock a real worker
// takes, and never speaks to a broker again. Holder 0 holds held.bin from the
// start; holder 1 holds generation 1 of swap.bin, whose file is then replaced
// and generation 2 loaded before the next kill. Every read they make must
// hash to what they acquired, across every kill, restart, eviction and clear.
#ifndef MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_HPP_
#define MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_HPP_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace modelpool::chaos {

inline constexpr int kMaxClients = 64;

struct Options {
  int rounds = 60;  // broker kills
  int clients = 8;
  std::uint64_t seed = 0;    // 0: from the clock
  double max_seconds = 600;  // bound on the whole run
  int min_uptime_ms = 30;    // broker uptime before a kill: uniform in [min, max]
  int max_uptime_ms = 1500;
  int max_downtime_ms = 150;  // broker down before the restart: uniform in [0, max]
  int grace_s = 1;            // --adopt-grace
  std::string broker;         // modelpoold ("" = the build tree's)
  bool keep = false;          // keep the scratch directory (logs) afterwards
  bool verbose = false;
};

// Parses argv; exits 0 after --help and 2 on a usage error.
Options parse_options(int argc, char** argv);

struct Model {
  int index = 0;  // in the clients' model list (a bit of Shared::may_hold)
  std::string name;
  std::uint64_t size = 0;
  std::uint64_t checksum = 0;  // XXH3 of the file
  bool pinned = false;
  // A second known version of the same size that replaces the file during
  // the run (0: none); a generation's bytes must hash to one of the two.
  std::uint64_t alt_checksum = 0;
};

// What one client slot saw (a respawned client keeps adding to its slot).
struct ClientCounters {
  std::atomic<std::uint64_t> acquires, pool_full, other_errors, releases, checked_reads,
      reads_while_down, wrong_bytes, reconnects, reacquired_same, reacquired_moved, dropped_held,
      timeouts, spawned;
};

// A holder (chaos_holder.cc): acquires one model once, maps and locks it,
// and never calls the broker again, across every restart; it re-reads the
// bytes until the end, and every read counts (its lock protects them).
inline constexpr int kHolders = 2;
struct HolderCounters {
  std::atomic<std::uint64_t> reads, wrong_bytes, errors;
  std::atomic<std::uint64_t> generation;  // what it acquired; 0 until it holds it
};

struct Shared {
  std::atomic<bool> stop;
  HolderCounters holders[kHolders];
  ClientCounters clients[kMaxClients];
  // Per client, bit i: it may hold model i (set before the acquire is sent,
  // cleared once no handle of it is left). The driver evicts an adopted
  // model within the grace period only when no bit says it may be held.
  std::atomic<std::uint64_t> may_hold[kMaxClients];
  std::atomic<std::uint64_t> wrong_reports;
  char first_wrong[512];  // the first wrong-bytes report, for the summary
};

Shared* map_shared();  // MAP_SHARED | MAP_ANONYMOUS, zeroed

// Forks a client process for slot `index` (the caller is single-threaded).
pid_t spawn_client(int index, std::uint64_t seed, const std::string& socket_path,
                   const std::vector<Model>& models, int grace_s, Shared* shared);

// Forks holder `index` on `model` (the caller is single-threaded).
pid_t spawn_holder(int index, const std::string& socket_path, const Model& model, Shared* shared);

}  // namespace modelpool::chaos

#endif  // MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_HPP_
