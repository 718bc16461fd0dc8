// File: clientlib/ctl/options.cc
#include "clientlib/ctl/options.hpp"

#include <charconv>
#include <cstdlib>
#include <optional>
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

// A duration: N, Ns or Nms (a bare number is seconds), or with `ms_only` a
// number of milliseconds; at most a day. nullopt: not one.
std::optional<long long> parse_ms(std::string_view text, bool ms_only) {
  long long scale = ms_only ? 1 : 1000;
  if (!ms_only && text.ends_with("ms")) {
    scale = 1;
    text.remove_suffix(2);
  } else if (!ms_only && text.ends_with("s")) {
    text.remove_suffix(1);
  }
  long long n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  constexpr long long kMaxMs = 24LL * 3600 * 1000;  // a day; also keeps n * scale in range
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || n < 0 ||
      n > kMaxMs / scale) {
    return std::nullopt;
  }
  return n * scale;
}

// "--timeout-ms N" (milliseconds) or "--timeout D". 0 means no limit.
Status parse_timeout(std::string_view name, std::string_view text, Options* o) {
  const bool ms_option = name == "--timeout-ms";
  const auto ms = parse_ms(text, ms_option);
  if (!ms) {
    return usage_error(ms_option ? "--timeout-ms needs a non-negative number of milliseconds"
                                 : "--timeout needs a duration such as 5, 5s or 500ms (0: no "
                                   "limit, at most a day)");
  }
  o->timeout_given = true;
  o->timeout = *ms == 0 ? std::nullopt : std::optional(std::chrono::milliseconds(*ms));
  return {};
}

// "--watch D" (as --timeout, at least 100 ms) and "--count N".
Status parse_watch(std::string_view name, std::string_view text, Options* o) {
  if (name == "--count") {
    const auto n = parse_ms(text, true);
    if (!n || *n == 0) return usage_error("--count needs a positive number");
    o->count = static_cast<std::uint64_t>(*n);
    return {};
  }
  const auto ms = parse_ms(text, false);
  if (!ms || *ms < 100) {
    return usage_error("--watch needs an interval such as 2, 2s or 500ms (at least 100ms)");
  }
  o->watch = std::chrono::milliseconds(*ms);
  return {};
}

// Handles one "--..." argument; `next` yields the following argument for
// options that take a value.
Status parse_option(std::string_view arg, const std::vector<std::string>& args, std::size_t* i,
                    Options* o) {
  std::string_view value;
  bool has_value = false;
  const std::string_view name = split_option(arg, &value, &has_value);
  if (name == "--help" || name == "-h" || name == "--version") {
    if (has_value) return usage_error(std::string(name) + " takes no value");
    (name == "--version" ? o->version : o->help) = true;
    return {};
  }
  if (name == "--json" || name == "--pin") {
    if (has_value) return usage_error(std::string(name) + " takes no value");
    (name == "--json" ? o->json : o->pin) = true;
    return {};
  }
  const bool timeout = name == "--timeout" || name == "--timeout-ms";
  const bool watch = name == "--watch" || name == "--count";
  if (name != "--run-dir" && name != "--pool" && name != "--socket" && !timeout && !watch) {
    return usage_error("unknown option " + std::string(name));
  }
  if (!has_value) {
    if (*i + 1 >= args.size()) return usage_error(std::string(name) + " needs a value");
    value = args[++*i];
  }
  if (timeout) return parse_timeout(name, value, o);
  if (watch) return parse_watch(name, value, o);
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
  if ((o.watch || o.count != 0) && o.command != "stats" && o.command != "list") {
    return usage_error("--watch and --count go with stats and list only");
  }
  if (o.count != 0 && !o.watch) return usage_error("--count goes with --watch");
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
  if (o.help || o.version) return o;
  if (!positional.empty()) o.command = positional[0];
  if (positional.size() > 1) o.model = positional[1];
  if (o.pool.empty()) {
    if (const char* env = std::getenv("MODELPOOL_POOL"); env != nullptr) o.pool = env;
  }
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
  --pool NAME       the pool (default: $MODELPOOL_POOL, else modelpool)
  --socket PATH     the admin socket (default: RUN_DIR/POOL.admin.sock)
  --json            print the broker's reply as JSON
                    (errors too, as {"ok": false, "error": {...}} on stdout)
  --timeout D       give up when the broker does not answer within D
                    (5, 5s or 500ms; 0: no limit; default: 5s). `load` waits
                    for the load itself as long as it takes unless --timeout
                    is given; the broker must still answer within 5s first
  --timeout-ms N    the same in milliseconds
  --watch D         stats, list: print again every D (2, 2s, 500ms) until
                    interrupted, clearing the screen on a terminal
  --count N         with --watch: stop after N prints
  --version         print modelpoolctl's version
  -h, --help        this text

exit status: 0 ok, 1 the broker refused or failed, 2 usage error,
3 no broker is running, or it did not answer within the timeout
)";
}

std::string version_text() { return "modelpoolctl " MODELPOOL_VERSION "\n"; }

bool wants_json(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") return false;
    if (a == "--json") return true;
  }
  return false;
}

}  // namespace modelpool::ctl
