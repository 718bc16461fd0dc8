// File: tests/fault/chaos/chaos_options.cc
#include <cstdio>
#include <cstdlib>
#include <string>

#include "chaos.hpp"

namespace modelpool::chaos {

namespace {

constexpr const char* kUsage = R"(usage: modelpool_chaos [--quick] [--rounds N] [options]

Kills and restarts modelpoold at random moments while client processes
acquire, read and verify models, then checks that no client read wrong
bytes, no extent leaked, no lock went stale and the self-check passes.

  --quick            15 rounds, shorter uptimes, under a minute
  --rounds N         broker kills (default 60)
  --clients N        client processes, 1..64 (default 8)
  --seed S           random seed (default: from the clock; printed)
  --grace S          the broker's --adopt-grace (default 1)
  --max-seconds S    stop starting rounds after S seconds (default 600)
  --broker PATH      modelpoold to run (default: the build tree's)
  --keep             keep the scratch directory (models, broker logs)
  --verbose          one line per round
exit status: 0 all checks passed, 1 a check failed, 2 usage error
)";

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "modelpool_chaos: %s\n%s", what.c_str(), kUsage);
  std::exit(2);
}

long number(int argc, char** argv, int& i, long lo, long hi) {
  if (i + 1 >= argc) usage_error(std::string(argv[i]) + " needs a value");
  const std::string name = argv[i];
  char* end = nullptr;
  const long v = std::strtol(argv[++i], &end, 10);
  if (*end != '\0' || v < lo || v > hi) {
    usage_error(name + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "]");
  }
  return v;
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {  // --quick sets defaults that later options may override
    if (std::string(argv[i]) == "--quick") {
      o.rounds = 15;
      o.max_uptime_ms = 900;
      o.max_downtime_ms = 100;
      o.max_seconds = 50;
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") continue;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (a == "--rounds") {
      o.rounds = static_cast<int>(number(argc, argv, i, 1, 100000));
    } else if (a == "--clients") {
      o.clients = static_cast<int>(number(argc, argv, i, 1, kMaxClients));
    } else if (a == "--seed") {
      o.seed = static_cast<std::uint64_t>(number(argc, argv, i, 1, 0x7fffffff));
    } else if (a == "--grace") {
      o.grace_s = static_cast<int>(number(argc, argv, i, 1, 3600));
    } else if (a == "--max-seconds") {
      o.max_seconds = static_cast<double>(number(argc, argv, i, 1, 86400));
    } else if (a == "--broker") {
      if (i + 1 >= argc) usage_error("--broker needs a path");
      o.broker = argv[++i];
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else {
      usage_error("unknown option " + a);
    }
  }
  return o;
}

}  // namespace modelpool::chaos
