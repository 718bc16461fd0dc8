// File: clientlib/ctl/commands.hpp
//
// modelpoolctl's subcommands: a table from name to whether it takes a model
// NAME and how its reply is printed for humans, and run(), which connects,
// sends the op and turns the outcome into output and an exit code. A failure
// is one line on stderr in both modes and, with --json, also one object on
// stdout:
//   {"ok": false, "error": {"code": CODE, "message": TEXT}}
// CODE is the broker's error code (docs/protocol.md), "unavailable" when no
// broker runs, "timeout" when it did not answer in time, "usage" for a
// command-line mistake.
#ifndef MODELPOOL_CLIENTLIB_CTL_COMMANDS_HPP_
#define MODELPOOL_CLIENTLIB_CTL_COMMANDS_HPP_

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

#include "clientlib/ctl/options.hpp"

namespace modelpool::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitBrokerError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNoBroker = 3;

struct CommandSpec {
  std::string_view name;  // also the admin op
  bool takes_model;
  // Prints `reply` (the broker's fields) for humans; returns the exit code.
  int (*print)(const nlohmann::json& reply, std::ostream& out);
};

// A failure as modelpoolctl reports it.
struct Failure {
  int exit_code;
  std::string code;  // see the file comment
  std::string message;
  // Text mode: "error: CODE: message" (true) or the message alone.
  bool code_in_text = true;
};

// {"ok": false, "error": {"code": ..., "message": ...}} and a newline.
void print_failure_json(const Failure& f, std::ostream& out);
// Prints `f` (one line on `err`, and as JSON on `out` when `json`) and
// returns its exit code.
int report_failure(bool json, const Failure& f, std::ostream& out, std::ostream& err);

// The spec of `name`, or nullptr.
const CommandSpec* find_command(std::string_view name);

// Runs the parsed command against the broker; prints results to `out` and
// failures to `err`. Returns the exit code.
int run(const Options& options, std::ostream& out, std::ostream& err);
// run(), repeated every --watch interval (--count times, or until killed or
// until a run fails, whose exit status it returns).
int run_watching(const Options& options, std::ostream& out, std::ostream& err);

}  // namespace modelpool::ctl

#endif  // MODELPOOL_CLIENTLIB_CTL_COMMANDS_HPP_
