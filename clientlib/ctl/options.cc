// File: clientlib/ctl/options.cc
#include "clientlib/ctl/options.hpp"

#include <charconv>
#include <string_view>

#include "clientlib/ctl/commands.hpp"
#include "shm/layout/paths.hpp"

namespace modelpool::ctl {
namespace {

Status usage_error(std::string message) {
  return error(ErrorCode::kBadRequest, std::move(message));
}

// Splits "--name=value" into name and value; `has_value` says whether '='
// was there.
std::string_view split_option(std::string_view arg, std::string_view* value, bool* has_value) {
  const auto eq = arg.find('=');
  *has_value = eq != std::string_view::npos;
  if (*has_value) *value = arg.substr(eq + 1);
  return arg.substr(0, eq);
}

Status parse_timeout(std::string_view text, Options* o) {
  long long ms = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || p != text.data() + text.size() || ms < 0) {
    return usage_error("--timeout-ms needs a non-negative number of milliseconds");
  }
  if (ms > 0) o->timeout = std::chrono::milliseconds(ms);
  return {};
}

// Handles one "--..." argument; `next` yields the following argument for
// options that take a value.
Status parse_option(std::string_view arg, const std::vector<std::string>& args, std::size_t* i,
                    Options* o) {
  std::string_view value;
  bool has_value = false;
  const std::string_view name = split_option(arg, &value, &has_value);
  if (name == "--help" || name == "-h") {
    o->help = true;
    return {};
  }
  if (name == "--json" || name == "--pin") {
    if (has_value) return usage_error(std::string(name) + " takes no value");
    (name == "--json" ? o->json : o->pin) = true;
    return {};
  }
  if (name != "--run-dir" && name != "--pool" && name != "--socket" && name != "--timeout-ms") {
    return usage_error("unknown option " + std::string(name));
  }
  if (!has_value) {
    if (*i + 1 >= args.size()) return usage_error(std::string(name) + " needs a value");
    value = args[++*i];
  }
  if (name == "--timeout-ms") return parse_timeout(value, o);
  if (value.empty()) return usage_error(std::string(name) + " needs a non-empty value");
  (name == "--run-dir" ? o->run_dir : name == "--pool" ? o->pool : o->socket) = value;
  return {};
}

Status check_command(const Options& o, const std::vector<std::string>& positional) {
  if (positional.empty()) return usage_error("missing command");
  const CommandSpec* spec = find_command(o.command);
  if (spec == nullptr) return usage_error("unknown command '" + o.command + "'");
  const std::size_t want = spec->takes_model ? 2 : 1;
  if (positional.size() < want) return usage_error(o.command + " needs a model NAME");
  if (positional.size() > want) {
    return usage_error("unexpected argument '" + positional[want] + "'");
  }
  if (o.pin && o.command != "load") return usage_error("--pin goes with load only");
  if (!o.pool.empty()) {
    if (Status s = layout::validate_pool_name(o.pool); !s.ok()) return usage_error(s.message());
  }
  return {};
}

}  // namespace

Result<Options> parse_options(const std::vector<std::string>& args) {
  Options o;
  std::vector<std::string> positional;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!options_done && arg == "--") {
      options_done = true;
    } else if (!options_done && arg.size() > 1 && arg[0] == '-') {
      if (Status s = parse_option(arg, args, &i, &o); !s.ok()) return s;
    } else {
      positional.push_back(arg);
    }
  }
  if (o.help) return o;
  if (!positional.empty()) o.command = positional[0];
  if (positional.size() > 1) o.model = positional[1];
  if (Status s = check_command(o, positional); !s.ok()) return s;
  return o;
}

std::string pool_name(const Options& options) {
  return options.pool.empty() ? std::string(layout::kDefaultPool) : options.pool;
}

std::string admin_socket(const Options& options) {
  if (!options.socket.empty()) return options.socket;
  const std::string run_dir = options.run_dir.empty() ? layout::default_run_dir() : options.run_dir;
  return layout::admin_socket_path(run_dir, pool_name(options));
}

std::string usage() {
  return R"(usage: modelpoolctl [options] <command> [NAME]

Talks to a modelpool broker's admin socket.

commands:
  stats             cache statistics and the model table
  list              the models in the pool
  load NAME [--pin] load NAME into the pool (and pin it)
  evict NAME        evict NAME (it must be idle)
  pin NAME          keep NAME resident
  unpin NAME        let NAME be evicted again
  clear             evict every idle, unpinned model
  health            is the broker alive
  config            the broker's effective configuration
  selfcheck         check the pool's invariants (exit 1 on problems)

options:
  --run-dir DIR     the broker's run directory (default: $MODELPOOL_RUN_DIR,
                    else $XDG_RUNTIME_DIR/modelpool, else /tmp/modelpool-$UID)
  --pool NAME       the pool (default: modelpool)
  --socket PATH     the admin socket (default: RUN_DIR/POOL.admin.sock)
  --json            print the broker's reply as JSON
  --timeout-ms N    give up on a reply after N ms (default: no limit)
  -h, --help        this text

exit status: 0 ok, 1 the broker refused or failed, 2 usage error,
3 no broker is running
)";
}

}  // namespace modelpool::ctl
