// File: clientlib/ctl/printers.cc
//
// One human-readable printer per modelpoolctl command (see render.hpp).
#include <cstdio>
#include <string>

#include "clientlib/ctl/commands.hpp"
#include "clientlib/ctl/render.hpp"
#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::ctl {
namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string hit_rate_text(const nlohmann::json& r) {
  const std::uint64_t hits = json_u64(r, "hits");
  const std::uint64_t requests = hits + json_u64(r, "misses");
  if (requests == 0) return "n/a (0 requests)";
  return fixed(100.0 * static_cast<double>(hits) / static_cast<double>(requests), 1) + "% (" +
         std::to_string(hits) + "/" + std::to_string(requests) + " requests)";
}

std::string loads_text(const nlohmann::json& r) {
  const std::uint64_t loads = json_u64(r, "loads");
  const std::uint64_t bytes = json_u64(r, "bytes_loaded");
  const double seconds = json_num(r, "load_seconds");
  std::string text = std::to_string(loads);
  if (loads == 0) return text;
  text += " (" + units::format_bytes(bytes) + " in " + format_duration(seconds);
  if (seconds > 0) text += ", " + fixed(static_cast<double>(bytes) / seconds / 1e9, 1) + " GB/s";
  return text + ")";
}

std::string evictions_text(const nlohmann::json& r) {
  const std::uint64_t n = json_u64(r, "evictions");
  std::string text = std::to_string(n);
  if (n > 0) text += " (" + units::format_bytes(json_u64(r, "bytes_evicted")) + ")";
  return text;
}

// The origins' and the disk tier's lines (a broker with --origin or
// --disk-cache).
void print_origins(const nlohmann::json& o, std::ostream& out) {
  const std::string kSep = "   ";
  std::string names;
  if (const auto list = o.find("origins"); list != o.end() && list->is_array()) {
    for (const auto& n : *list) names += (names.empty() ? "" : ", ") + n.get<std::string>();
  }
  out << "Origins: " << (names.empty() ? "(none)" : names) << kSep << json_u64(o, "fetches")
      << " downloads, " << units::format_bytes(json_u64(o, "bytes")) << " received, "
      << json_u64(o, "requests") << " requests, " << json_u64(o, "retries") << " retries, "
      << json_u64(o, "errors") << " errors\n";
  if (const auto t = o.find("disk_tier"); t != o.end() && t->is_object()) {
    const std::uint64_t asked = json_u64(*t, "hits") + json_u64(*t, "misses");
    out << "Disk tier: " << units::format_bytes(json_u64(*t, "bytes")) << " of "
        << units::format_bytes(json_u64(*t, "budget")) << ", " << json_u64(*t, "entries")
        << " entries" << kSep << "Hit rate: "
        << (asked == 0
                ? std::string("-")
                : std::to_string(100 * json_u64(*t, "hits") / asked) + "% (" +
                      std::to_string(json_u64(*t, "hits")) + " of " + std::to_string(asked) + ")")
        << kSep << "Evictions: " << json_u64(*t, "evictions") << kSep
        << "Write errors: " << json_u64(*t, "write_errors") << "\n";
  }
}

}  // namespace

int print_stats(const nlohmann::json& r, std::ostream& out) {
  const std::string kSep = "   ";
  out << "MODEL CACHE STATISTICS\n" << std::string(70, '=') << "\n";
  out << "Hit Rate: " << hit_rate_text(r) << kSep << "Loads: " << loads_text(r) << kSep
      << "Evictions: " << evictions_text(r) << "\n";
  out << "Memory: " << units::format_bytes(json_u64(r, "bytes_used")) << " used of "
      << units::format_bytes(json_u64(r, "bytes_budget")) << " budget" << kSep
      << "Clients: " << json_u64(r, "clients") << kSep
      << "Uptime: " << format_age(json_u64(r, "uptime_s")) << "\n";
  out << "Segment: " << units::format_bytes(json_u64(r, "offset_space_used")) << " of "
      << units::format_bytes(json_u64(r, "offset_space")) << " offset space used, largest free "
      << units::format_bytes(json_u64(r, "largest_free_extent")) << kSep
      << "Host: " << units::format_bytes(json_u64(r, "mem_available")) << " available of "
      << units::format_bytes(json_u64(r, "mem_total")) << "\n";
  out << "Requests: " << json_u64(r, "acquires") << " acquires, " << json_u64(r, "releases")
      << " releases" << kSep << "Handles: " << json_u64(r, "handles") << kSep
      << "Loading: " << json_u64(r, "loads_in_flight") << kSep
      << "Waiting for room: " << json_u64(r, "waiting_for_room") << kSep
      << "Load failures: " << json_u64(r, "load_failures") << "\n";
  out << "Pool: " << json_str(r, "pool") << " (pid " << json_u64(r, "pid") << ", policy "
      << json_str(r, "eviction_policy") << ", page size "
      << units::format_bytes(json_u64(r, "page_size")) << ")\n";
  if (const auto o = r.find("origins"); o != r.end() && o->is_object()) print_origins(*o, out);
  out << "\n";
  print_models(r.contains("models") ? r["models"] : nlohmann::json(), out);
  if (json_bool(r, "models_truncated")) {
    out << "(" << (r.contains("models") ? r["models"].size() : 0) << " of "
        << json_u64(r, "models_total") << " models shown; `modelpoolctl list` shows all)\n";
  }
  return kExitOk;
}

int print_list(const nlohmann::json& r, std::ostream& out) {
  print_models(r.contains("models") ? r["models"] : nlohmann::json(), out);
  return kExitOk;
}

int print_load(const nlohmann::json& r, std::ostream& out) {
  out << (json_bool(r, "cached") ? "already resident: " : "loaded: ") << json_str(r, "model")
      << " (" << units::format_bytes(json_u64(r, "size")) << ", generation "
      << json_u64(r, "generation") << ", " << json_str(r, "format") << ", checksum "
      << json_str(r, "checksum") << (json_bool(r, "pinned") ? ", pinned" : "") << ")\n";
  return kExitOk;
}

int print_evict(const nlohmann::json& r, std::ostream& out) {
  out << "evicted: " << json_str(r, "model") << " (" << units::format_bytes(json_u64(r, "bytes"))
      << ")\n";
  return kExitOk;
}

int print_pin(const nlohmann::json& r, std::ostream& out) {
  out << json_str(r, "model") << (json_bool(r, "pinned") ? " is pinned" : " is not pinned") << "\n";
  return kExitOk;
}

int print_clear(const nlohmann::json& r, std::ostream& out) {
  const std::uint64_t n = json_u64(r, "evicted");
  out << "evicted " << n << (n == 1 ? " model (" : " models (")
      << units::format_bytes(json_u64(r, "bytes")) << ")\n";
  return kExitOk;
}

int print_health(const nlohmann::json& r, std::ostream& out) {
  const std::string status = json_str(r, "status", "unknown");
  out << status << ": pool " << json_str(r, "pool") << ", pid " << json_u64(r, "pid") << ", up "
      << format_age(json_u64(r, "uptime_s")) << "\n";
  return status == "ok" ? kExitOk : kExitBrokerError;
}

int print_config(const nlohmann::json& r, std::ostream& out) {
  const nlohmann::json* config = r.contains("config") ? &r["config"] : nullptr;
  if (config == nullptr || !config->is_object()) {
    out << "(no configuration in the reply)\n";
    return kExitOk;
  }
  Table table({"OPTION", "VALUE"}, {false, false});
  for (const auto& [key, value] : config->items()) {
    table.add({key, value.is_string() ? value.get<std::string>() : value.dump()});
  }
  table.print(out);
  return kExitOk;
}

int print_selfcheck(const nlohmann::json& r, std::ostream& out) {
  if (selfcheck_passed(r)) {
    out << "selfcheck: ok\n";
    return kExitOk;
  }
  const nlohmann::json& problems = r["problems"];
  out << "selfcheck: " << problems.size() << (problems.size() == 1 ? " problem" : " problems")
      << "\n";
  for (const nlohmann::json& p : problems) {
    out << "  - " << (p.is_string() ? p.get<std::string>() : p.dump()) << "\n";
  }
  return kExitBrokerError;
}

}  // namespace modelpool::ctl
