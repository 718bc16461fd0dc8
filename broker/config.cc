// File: broker/config.cc
//
// The option table and the command line. Each row knows how to parse its
// value into Config, how to print it back, its bounds and its help line;
// parsing, --help and the `config` op are generated from the table, and so
// is the configuration file (config_file.cc).
#include "broker/config.hpp"

#include <charconv>
#include <sstream>
#include <string_view>

#include "broker/config_options.hpp"
#include "broker/origin/origin_url.hpp"
#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {
namespace {

// A field of Config::policy, for the option helpers below.
template <typename T>
auto policy_field(T PoolConfig::*member) {
  return [member](auto& c) -> auto& { return c.policy.*member; };
}

// The reason a value is refused; the caller says which option or key.
Status refuse(const std::string& why) { return error(ErrorCode::kBadRequest, why); }

Status bad(const char* name, const std::string& why) {
  return error(ErrorCode::kBadRequest, std::string("--") + name + ": " + why);
}

template <typename Field>
nlohmann::json get_field(Field field, const Config& c) {
  return nlohmann::json(std::invoke(field, c));
}

// A field of Config: a member pointer, or a callable giving the field of a
// Config (const or not), for fields of its nested structs (policy_field).
template <typename Field>
Option str(const char* name, const char* arg, const char* help, Field field,
           bool command_line_only = false) {
  return {name,
          arg,
          help,
          OptionKind::kString,
          command_line_only,
          [field](Config* c, const std::string& v) {
            std::invoke(field, *c) = v;
            return Status();
          },
          [field](const Config& c) { return get_field(field, c); }};
}

Option flag(const char* name, const char* help, bool Config::*field) {
  return {name,
          nullptr,
          help,
          OptionKind::kFlag,
          false,
          [field](Config* c, const std::string& v) -> Status {
            if (v != "" && v != "true" && v != "false") return refuse("takes no value");
            std::invoke(field, *c) = v != "false";
            return {};
          },
          [field](const Config& c) { return get_field(field, c); }};
}

template <typename Field>
Option size(const char* name, const char* help, Field field, std::uint64_t lo, std::uint64_t hi) {
  return {name,
          "SIZE",
          help,
          OptionKind::kSize,
          false,
          [=](Config* c, const std::string& v) -> Status {
            auto n = units::parse_size(v);
            if (!n.ok()) return refuse(n.status().message());
            if (*n < lo || *n > hi) {
              return refuse("must be between " + units::format_bytes(lo) + " and " +
                            units::format_bytes(hi));
            }
            std::invoke(field, *c) = *n;
            return {};
          },
          [field](const Config& c) { return get_field(field, c); }};
}

Option count(const char* name, const char* arg, const char* help, std::uint64_t Config::*field,
             std::uint64_t lo, std::uint64_t hi) {
  return {name,
          arg,
          help,
          OptionKind::kCount,
          false,
          [=](Config* c, const std::string& v) -> Status {
            std::uint64_t n = 0;
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || p != v.data() + v.size())
              return refuse("\"" + v + "\" is not a number");
            if (n < lo || n > hi) {
              return refuse("must be between " + std::to_string(lo) + " and " + std::to_string(hi));
            }
            std::invoke(field, *c) = n;
            return {};
          },
          [field](const Config& c) { return get_field(field, c); }};
}

template <typename Field>
Option fraction(const char* name, const char* help, Field field) {
  return {name,
          "FRACTION",
          help,
          OptionKind::kFraction,
          false,
          [=](Config* c, const std::string& v) -> Status {
            double d = 0;
            try {
              std::size_t used = 0;
              d = std::stod(v, &used);
              if (used != v.size()) throw std::invalid_argument(v);
            } catch (...) {
              return refuse("\"" + v + "\" is not a number");
            }
            if (d > 1.0 && d <= 100.0) d /= 100.0;  // accept percentages
            if (!(d > 0.0 && d <= 1.0)) return refuse("must be in (0, 1] or a percentage");
            std::invoke(field, *c) = d;
            return {};
          },
          [field](const Config& c) { return get_field(field, c); }};
}

Option list(const char* name, const char* help, std::vector<std::string> Config::*field) {
  return {name,
          "A,B,...",
          help,
          OptionKind::kList,
          false,
          [=](Config* c, const std::string& v) -> Status {
            std::stringstream ss(v);
            for (std::string item; std::getline(ss, item, ',');) {
              if (!item.empty()) std::invoke(field, *c).push_back(item);
            }
            return {};
          },
          [field](const Config& c) { return get_field(field, c); }};
}

template <typename Field>
Option choice(const char* name, const char* arg, const char* help, Field field,
              std::vector<std::string> allowed) {
  return {name,
          arg,
          help,
          OptionKind::kChoice,
          false,
          [=](Config* c, const std::string& v) -> Status {
            for (const auto& a : allowed) {
              if (a == v) {
                std::invoke(field, *c) = v;
                return {};
              }
            }
            std::string all;
            for (const auto& a : allowed) all += (all.empty() ? "" : ", ") + a;
            return refuse("\"" + v + "\" is not one of " + all);
          },
          [field](const Config& c) { return get_field(field, c); }};
}

}  // namespace

Option Option::redacted() && {
  get = [inner = std::move(get)](const Config& c) {
    nlohmann::json v = inner(c);
    if (v.is_string()) return nlohmann::json(redact_url(v.get<std::string>()));
    if (v.is_array()) {
      for (auto& item : v) item = redact_url(item.get<std::string>());
    }
    return v;
  };
  return std::move(*this);
}

const std::vector<Option>& config_options() {
  static const std::vector<Option> kOptions = {
      str("config", "FILE",
          "read options from a TOML file whose keys are these options' names "
          "(default $MODELPOOL_CONFIG); options given here override it",
          &Config::config_file, /*command_line_only=*/true),
      str("models", "DIR", "root directory of model files; names are paths below it (required)",
          &Config::models_dir),
      str("name", "POOL",
          "pool name: segment /dev/shm/POOL, sockets RUN_DIR/POOL.sock (default modelpool)",
          &Config::pool),
      str("run-dir", "DIR",
          "runtime directory for sockets and the lock "
          "(default $XDG_RUNTIME_DIR/modelpool or /tmp/modelpool-$UID)",
          &Config::run_dir),
      str("segment-dir", "DIR",
          "put the segment in DIR (a hugetlbfs or huge=always tmpfs mount) "
          "instead of /dev/shm",
          &Config::segment_dir),
      str("huge-tmpfs", "auto|no|DIR",
          "without --segment-dir, the segment goes on a huge=within_size tmpfs of its own: "
          "RUN_DIR/POOL.tmpfs (auto, mounted when root) or DIR (mounted by the operator); "
          "no, or when that cannot be had: /dev/shm",
          &Config::huge_tmpfs),
      size("memory",
           "memory budget (default 70% of MemAvailable, capped by the segment "
           "filesystem's free space)",
           policy_field(&PoolConfig::budget), 16ULL << 20, 1ULL << 50),
      fraction("high-watermark", "evict idle models above this fraction of the budget (0.85)",
               policy_field(&PoolConfig::high_watermark)),
      fraction("low-watermark", "...down to this fraction (0.70)",
               policy_field(&PoolConfig::low_watermark)),
      size("max-model-size", "largest model accepted (default: the budget)",
           policy_field(&PoolConfig::max_model_size), 0, 1ULL << 50),
      choice("eviction", "POLICY",
             "eviction policy: lru (default) or gdsf (frequency and reload cost)",
             policy_field(&PoolConfig::eviction), {"lru", "gdsf"}),
      list("preload", "models to load at start, before the broker reports healthy",
           &Config::preload),
      str("manifest", "FILE", "JSON manifest: name -> {path, revision, sha256, pin, preload}",
          &Config::manifest),
      str("hf-cache", "DIR",
          "Hugging Face hub cache for hf:ORG/NAME[@REV] names, read only (default "
          "$HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)",
          &Config::hf_cache),
      list("origin",
           "fetch names that no local source has from URL/NAME: http(s)://, s3://BUCKET/PREFIX "
           "(AWS_* credentials, AWS_ENDPOINT_URL) or hf:// (HF_ENDPOINT, HF_TOKEN); repeatable, "
           "tried in order",
           &Config::origins)
          .redacted(),
      str("origin-ca", "FILE", "CA certificates (PEM) trusted for origins besides the system's",
          &Config::origin_ca),
      count("origin-connections", "N", "ranged GETs in flight per download (4)",
            &Config::origin_connections, 1, 64),
      size("origin-part", "smallest range worth a GET of its own (16MiB)", &Config::origin_part,
           64ULL << 10, 1ULL << 40),
      count("origin-retries", "N", "retries per request on resets, timeouts and 5xx (4)",
            &Config::origin_retries, 0, 100),
      count("origin-timeout", "SECONDS",
            "an origin request that receives less than 1 KiB/s this long fails (30)",
            &Config::origin_timeout_s, 1, 3600),
      str("disk-cache", "DIR",
          "keep downloaded models on disk in DIR (content-addressed; survives restarts)",
          &Config::disk_cache),
      size("disk-budget", "bytes the disk cache may hold (required with --disk-cache)",
           &Config::disk_budget, 0, 1ULL << 56),
      size("repo-max-small-file",
           "largest config/tokenizer file of a repository that is loaded with it (16MiB)",
           &Config::repo_max_small_file, 0, 1ULL << 32),
      count("offset-space-factor", "N", "segment offset space as a multiple of the budget (16)",
            &Config::offset_space_factor, 1, 1024),
      count("catalog-capacity", "N", "maximum number of resident model generations (16384)",
            &Config::catalog_capacity, 16, 1 << 20),
      count("loader-threads", "N", "threads running loads (1)", &Config::loader_threads, 1, 64),
      count("queue-depth", "N", "reads in flight per load (4)", &Config::queue_depth, 1, 256),
      size("chunk-size", "bytes per read (4MiB)", &Config::chunk_bytes, 64ULL << 10, 256ULL << 20),
      flag("direct-io", "read model files with O_DIRECT (bypass the page cache)",
           &Config::direct_io),
      flag("remove-on-exit", "remove the segment on a clean exit (default: keep it for a restart)",
           &Config::remove_on_exit),
      flag("recreate", "discard an existing incompatible segment instead of refusing to start",
           &Config::recreate),
      count("adopt-grace", "SECONDS",
            "after a restart, adopted models are not evicted for this long (30)",
            &Config::adopt_grace_s, 0, 86400),
      count("max-clients", "N", "maximum simultaneous connections (4096)", &Config::max_clients, 1,
            1 << 20),
      size("max-outbound",
           "bytes of unsent replies after which a client that does not read is "
           "disconnected (4MiB)",
           &Config::max_outbound_bytes, 64ULL << 10, 1ULL << 30),
      count("max-handles-per-client", "N",
            "handles one connection may hold; past it acquire fails with pool_full (65536)",
            &Config::max_handles_per_client, 1, 1ULL << 32),
      count("max-waiting-per-client", "N",
            "acquires of one connection waiting for room (wait_ms); past it pool_full (16384)",
            &Config::max_waiting_per_client, 1, 1ULL << 32),
      str("group", "NAME", "group that may use the worker socket (mode 0660)", &Config::group),
      str("metrics-addr", "HOST:PORT", "serve Prometheus metrics on http://HOST:PORT/metrics",
          &Config::metrics_addr),
      count("metrics-max-clients", "N",
            "simultaneous metrics connections; past it new ones are closed at once (64)",
            &Config::metrics_max_clients, 1, 4096),
      count("metrics-idle-timeout", "SECONDS",
            "a metrics connection that has not finished its exchange by then is closed (10)",
            &Config::metrics_idle_timeout_s, 1, 3600),
      choice("log-level", "LEVEL", "trace, debug, info (default), warn, error, off",
             &Config::log_level, {"trace", "debug", "info", "warn", "error", "off"}),
      str("log-file", "FILE", "append logs to FILE instead of stderr", &Config::log_file),
      choice("log-format", "FORMAT",
             "text (default), json (one object per line) or journal (text behind <N> "
             "priorities); on stderr that is the journal, lines get <N> by themselves",
             &Config::log_format, {"text", "json", "journal"}),
  };
  return kOptions;
}

const Option* find_config_option(const std::string& name) {
  for (const auto& o : config_options()) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

namespace {

Status validate(const Config& c) {
  if (c.models_dir.empty()) return error(ErrorCode::kBadRequest, "--models DIR is required");
  if (auto s = layout::validate_pool_name(c.pool); !s.ok()) return bad("name", s.message());
  if (c.policy.low_watermark > c.policy.high_watermark) {
    return error(ErrorCode::kBadRequest, "--low-watermark must not exceed --high-watermark");
  }
  if (!c.disk_cache.empty() && c.disk_budget == 0) {
    return error(ErrorCode::kBadRequest, "--disk-cache DIR needs --disk-budget SIZE");
  }
  return {};
}

// One option as the command line gives it.
struct Given {
  const Option* option;
  std::string value;
};

}  // namespace

// Two passes: the command line is read first, so that the file (named by it)
// is applied before the options that override the file's keys.
Result<ParseOutcome> parse_command_line(int argc, const char* const* argv, Config* config,
                                        const char* default_config_file) {
  std::vector<Given> given;
  bool print_config = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") return ParseOutcome::kHelp;
    if (arg == "--version") return ParseOutcome::kVersion;
    if (arg == "--print-config") {
      print_config = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return error(ErrorCode::kBadRequest, "unexpected argument \"" + arg + "\" (see --help)");
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const Option* o = find_config_option(name);
    if (o == nullptr)
      return error(ErrorCode::kBadRequest, "unknown option --" + name + " (see --help)");
    if (o->arg != nullptr && !has_value) {
      if (i + 1 >= argc) return bad(o->name, "needs a value " + std::string(o->arg));
      value = argv[++i];
    } else if (o->arg == nullptr && has_value) {
      return bad(o->name, "takes no value");
    }
    given.push_back({o, std::move(value)});
  }

  std::string file = default_config_file != nullptr ? default_config_file : "";
  std::vector<std::string> overridden;
  for (const auto& g : given) {
    if (std::string_view(g.option->name) == "config") file = g.value;
    overridden.emplace_back(g.option->name);
  }
  if (!file.empty()) {
    config->config_file = file;
    if (Status s = apply_config_file(file, overridden, config); !s.ok()) return s;
  }
  for (const auto& g : given) {
    if (Status s = g.option->set(config, g.value); !s.ok()) return bad(g.option->name, s.message());
  }
  if (auto s = validate(*config); !s.ok()) return s;
  return print_config ? ParseOutcome::kPrintConfig : ParseOutcome::kRun;
}

std::string help_text() {
  std::ostringstream out;
  out << "usage: modelpoold --models DIR [options]\n\n"
         "Keeps model files in one shared-memory segment and lends read-only views of them\n"
         "to worker processes over a Unix socket. Runs in the foreground.\n\noptions:\n";
  for (const auto& o : config_options()) {
    std::string left = std::string("  --") + o.name + (o.arg ? std::string(" ") + o.arg : "");
    out << left;
    if (left.size() < 28)
      out << std::string(28 - left.size(), ' ');
    else
      out << "\n" << std::string(28, ' ');
    out << o.help << "\n";
  }
  out << "  --print-config            print the configuration in effect as TOML (for --config)\n"
         "                            and exit\n"
         "  --help                    this text\n  --version                 print the version\n";
  return out.str();
}

nlohmann::json to_json(const Config& config) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& o : config_options()) j[o.name] = o.get(config);
  return j;
}

}  // namespace modelpool::broker
