// File: broker/server/report_json.cc
#include "broker/server/report_json.hpp"

#include <string>

#include "shm/layout/segment_layout.hpp"

namespace modelpool::broker {

using nlohmann::json;

json to_json(const ModelRow& row) {
  const EntryInfo& e = row.entry;
  if (row.group) {
    const GroupRow& g = *row.group;
    json files = json::array();
    for (const GroupFileRow& f : g.files) {
      files.push_back({{"name", f.name},
                       {"entry", f.entry},
                       {"size", f.size},
                       {"format", f.format},
                       {"resident", f.resident}});
    }
    json j = {{"name", e.name},
              {"size", e.size},
              {"refs", g.refs},
              {"generation", 0},
              {"state", e.state == layout::EntryState::kReady ? "ready" : "partial"},
              {"pinned", g.pinned},
              {"current", true},
              {"format", "repository"},
              {"accesses", g.accesses},
              {"file_count", g.files.size()},
              {"files", std::move(files)}};
    if (!g.commit.empty()) j["commit"] = g.commit;
    return j;
  }
  json j = {{"name", e.name},
            {"size", e.size},
            {"refs", e.refs - e.alias_refs},  // its own: an alias's are on its row
            {"generation", e.generation},
            {"state", e.state == layout::EntryState::kReady ? "ready" : "loading"},
            {"pinned", e.pinned},
            {"current", e.current},
            {"format", std::string(layout::to_string(e.format))},
            {"accesses", e.accesses},
            {"last_access_unix_ms", e.last_access_ns / 1000000},
            {"load_seconds", e.load_seconds},
            {"offset", e.offset}};
  if (!row.shares.empty()) j["shares"] = row.shares;
  if (!row.member_of.empty()) j["member_of"] = row.member_of;
  if (row.download) {
    const DownloadRow& d = *row.download;
    const double rate = d.seconds > 0 ? static_cast<double>(d.bytes) / d.seconds : 0.0;
    j["download"] = {
        {"origin", d.origin},
        {"bytes", d.bytes},
        {"total", d.total},
        {"bytes_per_second", rate},
        {"eta_seconds", rate > 0 ? nlohmann::json(static_cast<double>(d.total - d.bytes) / rate)
                                 : nlohmann::json(nullptr)}};
  }
  return j;
}

json to_json(const std::vector<ModelRow>& rows) {
  json out = json::array();
  for (const ModelRow& r : rows) out.push_back(to_json(r));
  return out;
}

namespace {

json to_json(const OriginReport& o) {
  const OriginCounters& c = o.counters;
  json j = {{"origins", o.origins},
            {"requests", c.requests},
            {"bytes", c.bytes},
            {"errors", c.errors},
            {"retries", c.retries},
            {"fetches", c.fetches},
            {"integrity_failures", c.integrity_failures},
            {"disk_hits", c.disk_hits}};
  if (o.tier) {
    const DiskTierStats& t = *o.tier;
    const std::uint64_t asked = t.hits + t.misses;
    j["disk_tier"] = {
        {"bytes", t.bytes},
        {"entries", t.entries},
        {"budget", t.budget},
        {"hits", t.hits},
        {"misses", t.misses},
        {"hit_rate", asked ? static_cast<double>(t.hits) / static_cast<double>(asked) : 0.0},
        {"evictions", t.evictions},
        {"evicted_bytes", t.evicted_bytes},
        {"writes", t.writes},
        {"write_errors", t.write_errors}};
  }
  return j;
}

}  // namespace

namespace {

json stats_json(const StatsReport& s) {
  const Stats& c = s.counters;
  const std::uint64_t requests = c.hits + c.misses;
  return {
      {"pool", s.pool},
      {"version", s.version},
      {"pid", s.pid},
      {"process",
       {{"start_time_s", s.process.start_time_s},
        {"cpu_seconds", s.process.cpu_seconds},
        {"resident_bytes", s.process.resident_bytes},
        {"virtual_bytes", s.process.virtual_bytes},
        {"open_fds", s.process.open_fds},
        {"max_fds", s.process.max_fds}}},
      {"uptime_s", s.uptime_s},
      {"loads", c.loads},
      {"load_failures", c.load_failures},
      {"hits", c.hits},
      {"misses", c.misses},
      {"hit_rate", requests ? static_cast<double>(c.hits) / static_cast<double>(requests) : 0.0},
      {"acquires", c.acquires},
      {"releases", c.releases},
      {"evictions", s.evictions},
      {"bytes_evicted", s.bytes_evicted},
      {"bytes_loaded", c.bytes_loaded},
      {"load_seconds", c.load_seconds},
      {"bytes_used", s.bytes_used},
      {"bytes_budget", s.bytes_budget},
      {"offset_space", s.offset_space},
      {"offset_space_used", s.offset_space_used},
      {"largest_free_extent", s.largest_free_extent},
      {"clients", s.clients},
      {"handles", s.handles},
      {"loads_in_flight", s.loads_in_flight},
      {"waiting_for_room", s.waiting_for_room},
      {"mem_total", s.mem.total},
      {"mem_available", s.mem.available},
      {"page_size", s.page_size},
      {"segment_path", s.segment_path},
      {"eviction_policy", s.eviction_policy},
      {"load_histogram", {{"le", Stats::kLoadBuckets}, {"counts", c.load_bucket_counts}}},
      {"acquires_granted", c.acquires_granted},
      {"acquire_seconds", c.acquire_seconds},
      {"acquire_histogram", {{"le", Stats::kAcquireBuckets}, {"counts", c.acquire_bucket_counts}}},
      {"models", to_json(s.models)},
  };
}

}  // namespace

json to_json(const StatsReport& s) {
  json j = stats_json(s);
  if (s.origins) j["origins"] = to_json(*s.origins);
  return j;
}

json to_json(const Evicted& e) { return {{"model", e.model}, {"bytes", e.bytes}}; }

json to_json(const PinState& p) { return {{"model", p.model}, {"pinned", p.pinned}}; }

json to_json(const Cleared& c) { return {{"evicted", c.evicted}, {"bytes", c.bytes}}; }

json to_json(const SelfCheck& c) {
  // Not "ok": the reply envelope's own "ok" (always true here) would overwrite it.
  return {{"consistent", c.consistent()}, {"problems", c.problems}};
}

}  // namespace modelpool::broker
