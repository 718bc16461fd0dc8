// File: clientlib/ctl/render.cc
//
// Field readers, the Table printer and the model table. The per-command
// printers are in printers.cc.
#include "clientlib/ctl/render.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::ctl {
namespace {

const nlohmann::json* field(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string model_row_age(const nlohmann::json& row) {
  const std::uint64_t last = json_u64(row, "last_access_unix_ms");
  if (last == 0) return "-";
  const std::int64_t age_ms = now_unix_ms() - static_cast<std::int64_t>(last);
  return format_age(age_ms > 0 ? static_cast<std::uint64_t>(age_ms) / 1000 : 0);
}

// "ready", or "ready (old)" for an old generation still held by workers;
// a download says how far it is: "loading 41% 180.2 MiB/s ETA 3s".
std::string state_text(const nlohmann::json& row) {
  std::string state = json_str(row, "state");
  if (const nlohmann::json* d = field(row, "download"); d != nullptr && d->is_object()) {
    const std::uint64_t total = json_u64(*d, "total");
    const double rate = json_num(*d, "bytes_per_second");
    state += " " + std::to_string(total == 0 ? 0 : 100 * json_u64(*d, "bytes") / total) + "% " +
             units::format_bytes(static_cast<std::uint64_t>(rate)) + "/s";
    if (const nlohmann::json* eta = field(*d, "eta_seconds"); eta != nullptr && eta->is_number()) {
      state += " ETA " + format_age(static_cast<std::uint64_t>(eta->get<double>() + 0.5));
    }
  }
  const nlohmann::json* current = field(row, "current");
  if (current != nullptr && current->is_boolean() && !current->get<bool>()) state += " (old)";
  return state;
}

}  // namespace

std::uint64_t json_u64(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = field(j, key);
  if (v == nullptr) return 0;
  if (v->is_number_unsigned()) return v->get<std::uint64_t>();
  if (v->is_number_integer()) return std::max<std::int64_t>(0, v->get<std::int64_t>());
  if (v->is_number_float()) {
    const double d = v->get<double>();
    return d > 0 && d < 1.8e19 ? static_cast<std::uint64_t>(d) : 0;
  }
  return 0;
}

double json_num(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = field(j, key);
  return v != nullptr && v->is_number() ? v->get<double>() : 0.0;
}

std::string json_str(const nlohmann::json& j, std::string_view key, std::string_view dflt) {
  const nlohmann::json* v = field(j, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string(dflt);
}

bool json_bool(const nlohmann::json& j, std::string_view key) {
  const nlohmann::json* v = field(j, key);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

std::string format_age(std::uint64_t seconds) {
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m";
  if (seconds < 86400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string format_duration(double seconds) {
  if (!(seconds > 0)) return "-";
  char buf[32];
  if (seconds < 0.01) {
    std::snprintf(buf, sizeof buf, "%.2f ms", seconds * 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  }
  return buf;
}

Table::Table(std::vector<std::string> headers, std::vector<bool> numeric)
    : headers_(std::move(headers)), numeric_(std::move(numeric)) {
  numeric_.resize(headers_.size(), false);
}

void Table::add(std::vector<std::string> row) {
  row.resize(headers_.size());
  rows_.push_back(std::move(row));
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> width(headers_.size());
  for (std::size_t c = 0; c < headers_.size(); ++c) {
    width[c] = headers_[c].size();
    for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string pad(width[c] - row[c].size(), ' ');
      if (c > 0) line += "  ";
      line += numeric_[c] ? pad + row[c] : row[c] + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  print_row(headers_);
  for (const auto& row : rows_) print_row(row);
}

void print_models(const nlohmann::json& models, std::ostream& out) {
  if (!models.is_array() || models.empty()) {
    out << "(no models in the pool)\n";
    return;
  }
  Table table({"NAME", "SIZE", "REFS", "GEN", "STATE", "PINNED", "FORMAT", "ACCESSES",
               "LAST ACCESS", "LOAD TIME"},
              {false, true, true, true, false, false, false, true, true, true});
  for (const nlohmann::json& row : models) {
    // A file of a repository is part of its repository's row (--json lists it).
    if (field(row, "member_of") != nullptr) continue;
    if (field(row, "file_count") != nullptr) {
      std::string name = json_str(row, "name", "?");
      if (const std::string commit = json_str(row, "commit", ""); !commit.empty()) {
        name += " (" + commit.substr(0, 12) + ")";
      }
      table.add({name, units::format_bytes(json_u64(row, "size")),
                 std::to_string(json_u64(row, "refs")), "-", json_str(row, "state"),
                 json_bool(row, "pinned") ? "yes" : "no",
                 std::to_string(json_u64(row, "file_count")) + " files",
                 std::to_string(json_u64(row, "accesses")), "-", "-"});
      continue;
    }
    table.add({json_str(row, "name", "?"), units::format_bytes(json_u64(row, "size")),
               std::to_string(json_u64(row, "refs")), std::to_string(json_u64(row, "generation")),
               state_text(row), json_bool(row, "pinned") ? "yes" : "no", json_str(row, "format"),
               std::to_string(json_u64(row, "accesses")), model_row_age(row),
               format_duration(json_num(row, "load_seconds"))});
  }
  table.print(out);
}

bool selfcheck_passed(const nlohmann::json& reply) {
  const nlohmann::json* problems = field(reply, "problems");
  return problems == nullptr || (problems->is_array() && problems->empty());
}

}  // namespace modelpool::ctl
