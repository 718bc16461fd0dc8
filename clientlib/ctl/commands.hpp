// File: clientlib/ctl/commands.hpp
//
// modelpoolctl's subcommands: a table from name to whether it takes a model
// NAME and how its reply is printed for humans, and run(), which connects,
// sends the op and turns the outcome into output and an exit code.
#ifndef MODELPOOL_CLIENTLIB_CTL_COMMANDS_HPP_
#define MODELPOOL_CLIENTLIB_CTL_COMMANDS_HPP_

#include <nlohmann/json.hpp>
#include <ostream>
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

// The spec of `name`, or nullptr.
const CommandSpec* find_command(std::string_view name);

// Runs the parsed command against the broker; prints results to `out` and
// failures to `err`. Returns the exit code.
int run(const Options& options, std::ostream& out, std::ostream& err);

}  // namespace modelpool::ctl

#endif  // MODELPOOL_CLIENTLIB_CTL_COMMANDS_HPP_
