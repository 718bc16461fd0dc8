// File: tests/fault/chaos/chaos_run.hpp
//
// One chaos run's state, shared by the rounds (chaos_main.cc) and the end
// checks and summary (chaos_end.cc).
#ifndef MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_RUN_HPP_
#define MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_RUN_HPP_

#include <sys/types.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chaos.hpp"
#include "chaos_broker.hpp"
#include "chaos_checks.hpp"

namespace modelpool::chaos {

// Removes the segment and (unless `keep`) the scratch directory when it goes.
class Scratch {
 public:
  Scratch(std::string dir, std::string segment, bool keep);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void keep() { keep_ = true; }

 private:
  std::string dir_, segment_;
  bool keep_;
};

// selfcheck must answer consistent; otherwise each problem is reported.
void expect_consistent(const BrokerProcess& broker, Report& report, const std::string& when);

struct Run {
  explicit Run(const Options& options, std::uint64_t seed);
  ~Run();  // SIGKILLs clients still running (an aborted run)
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  int between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  void respawn(int i);
  bool anyone_may_hold(const Model& m) const;
  void uptime(BrokerProcess& broker);
  // The holder of held.bin (a worker that never re-acquires), from the start.
  void start_holder(int index, const std::string& name);
  // swap.bin: a holder maps generation 1, the file is replaced by its second
  // version (rename over it) and generation 2 loaded; a handle on generation
  // 2 stays open until the next kill, so that the killed segment holds both
  // and the restart must keep the superseded one its holder still maps.
  void replace_file();
  // Kills, checks, restarts; false when the broker could not restart.
  bool round(BrokerProcess& broker);
  // Stops the clients, checks the end state and prints the summary; the exit status.
  int finish(BrokerProcess& broker, bool alive);

  const Options& o;
  const std::uint64_t seed;
  std::mt19937_64 rng;
  std::string dir, pool, run_dir, segment;
  std::map<std::string, Model> models;
  std::vector<Model> client_models;
  Shared* shared = nullptr;
  std::vector<pid_t> clients;
  std::vector<pid_t> holders;                   // by holder index; -1 when not started or reaped
  std::string swap_v2;                          // the second version of swap.bin
  std::unique_ptr<fault::Conn> swap_v2_handle;  // holds generation 2 until the next kill
  std::set<std::string> adopted;                // by the running incarnation
  Report report;

 private:
  void stop_clients();
  void check_drained(BrokerProcess& broker);
  void check_final_restart(BrokerProcess& broker);
  void print_summary() const;
};

}  // namespace modelpool::chaos

#endif  // MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_RUN_HPP_
