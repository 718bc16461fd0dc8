// File: broker/config_options.hpp
//
// The option table behind broker/config.hpp, shared by its two readers: the
// command line (config.cc) and the configuration file (config_file.cc).
// Internal to the broker. Each row parses a value written as on the command
// line into Config and reads it back; rows are immutable after first use.
#ifndef MODELPOOL_BROKER_CONFIG_OPTIONS_HPP_
#define MODELPOOL_BROKER_CONFIG_OPTIONS_HPP_

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "broker/config.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// What a value is, which decides the TOML types a file may give it.
enum class OptionKind {
  kString,    // TOML string
  kChoice,    // TOML string, one of a fixed set
  kFlag,      // TOML boolean; on the command line, present = true
  kSize,      // TOML string ("8GiB") or integer (bytes)
  kCount,     // TOML integer
  kFraction,  // TOML float or integer (0.85, or a percentage: 85)
  kList,      // TOML array of strings; on the command line A,B,...
};

struct Option {
  const char* name;  // the long option without "--", and the file's key
  const char* arg;   // the value's placeholder in --help; nullptr for flags
  const char* help;
  OptionKind kind;
  bool command_line_only;  // --config: not a key of the file it names
  // Parses `value`, spelled as on the command line ("true"/"false" for a
  // flag), into the config. An error's message is the reason alone; the
  // caller names the option or the file's key.
  std::function<Status(Config*, const std::string&)> set;
  std::function<nlohmann::json(const Config&)> get;

  // The same option, shown (--print-config, the `config` admin op) with
  // the credentials in its URLs (user:password, a query) left out.
  Option redacted() &&;
};

// Every option, in --help order.
const std::vector<Option>& config_options();
// The option named `name` (without "--"), or nullptr.
const Option* find_config_option(const std::string& name);

// Applies the file at `path` to `config`. Keys named in `overridden` (given
// on the command line) are checked but leave `config` alone. Errors name the
// file, the line and the key.
Status apply_config_file(const std::string& path, const std::vector<std::string>& overridden,
                         Config* config);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_CONFIG_OPTIONS_HPP_
