// File: tests/fault/chaos/chaos_broker.hpp
//
// The broker under chaos: one modelpoold incarnation after another on the
// same pool, each with its own log file (the driver reads what each one
// logged: the adoption line, loads and evictions), started and killed by pid.
#ifndef MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_BROKER_HPP_
#define MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_BROKER_HPP_

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fault_support.hpp"

namespace modelpool::chaos {

class BrokerProcess {
 public:
  BrokerProcess(std::vector<std::string> argv, std::string log_dir, std::string admin_socket);
  ~BrokerProcess();  // SIGKILLs a running incarnation
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  // Starts the next incarnation and waits (up to 30 s) for its ready line.
  // On failure `why` gets its exit status and the tail of its log.
  bool start(std::string* why);
  // SIGKILL and reap. False when the incarnation had already died by
  // itself (a crash); `why` then says how, with the tail of its log.
  bool kill9(std::string* why = nullptr);
  int terminate();  // SIGTERM and reap; the wait status
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int incarnation() const { return incarnation_; }
  const std::string& log_path() const { return log_path_; }  // the current or last one
  // One admin request on a fresh connection; nullopt when it fails.
  std::optional<fault::json> admin(const std::string& op,
                                   fault::json fields = fault::json::object()) const;

 private:
  int reap();
  std::string log_tail() const;

  std::vector<std::string> argv_;
  std::string log_dir_, admin_socket_, log_path_;
  pid_t pid_ = -1;
  int stdout_ = -1;
  int incarnation_ = 0;
};

// "adopted segment of pool ...: K model(s), ... dropped L half-loaded and I
// invalid entries", from one incarnation's log.
struct AdoptionLine {
  bool found = false;
  int kept = 0, loading = 0, invalid = 0;
};
AdoptionLine parse_adoption(const std::string& log_path);

// Loads, in one incarnation's log, of a model it adopted and had not evicted
// since: "no READY model is read from disk again". Returns their names.
std::vector<std::string> reloads_of_adopted(const std::string& log_path,
                                            std::set<std::string> adopted);

}  // namespace modelpool::chaos

#endif  // MODELPOOL_TESTS_FAULT_CHAOS_CHAOS_BROKER_HPP_
