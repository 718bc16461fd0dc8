// File: clientlib/ctl/render.hpp
//
// How modelpoolctl prints admin replies for humans: aligned tables, sizes in
// MiB/GiB, ages like "5m", the stats summary block. Replies come from the
// broker, so every field is read defensively: a missing or mistyped field
// prints as 0 / "-" rather than failing. Pure functions of their input
// (and the clock, for ages).
#ifndef MODELPOOL_CLIENTLIB_CTL_RENDER_HPP_
#define MODELPOOL_CLIENTLIB_CTL_RENDER_HPP_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace modelpool::ctl {

// Field readers with defaults for absent or mistyped fields.
std::uint64_t json_u64(const nlohmann::json& j, std::string_view key);
double json_num(const nlohmann::json& j, std::string_view key);
std::string json_str(const nlohmann::json& j, std::string_view key, std::string_view dflt = "-");
bool json_bool(const nlohmann::json& j, std::string_view key);

// 42 -> "42s", 300 -> "5m", 7200 -> "2h", 172800 -> "2d".
std::string format_age(std::uint64_t seconds);
// 0.42 -> "0.42 s", 0.0035 -> "3.50 ms", 0 -> "-".
std::string format_duration(double seconds);

// Columns padded to their widest cell; the first column is left-aligned,
// columns marked numeric are right-aligned.
class Table {
 public:
  Table(std::vector<std::string> headers, std::vector<bool> numeric);
  void add(std::vector<std::string> row);
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> numeric_;
  std::vector<std::vector<std::string>> rows_;
};

// The table of model rows (as in `list` and `stats`).
void print_models(const nlohmann::json& models, std::ostream& out);

// True when a selfcheck reply lists no problems.
bool selfcheck_passed(const nlohmann::json& reply);

// One printer per command; each returns the exit code.
int print_stats(const nlohmann::json& reply, std::ostream& out);
int print_list(const nlohmann::json& reply, std::ostream& out);
int print_load(const nlohmann::json& reply, std::ostream& out);
int print_evict(const nlohmann::json& reply, std::ostream& out);
int print_pin(const nlohmann::json& reply, std::ostream& out);
int print_clear(const nlohmann::json& reply, std::ostream& out);
int print_health(const nlohmann::json& reply, std::ostream& out);
int print_config(const nlohmann::json& reply, std::ostream& out);
int print_selfcheck(const nlohmann::json& reply, std::ostream& out);

}  // namespace modelpool::ctl

#endif  // MODELPOOL_CLIENTLIB_CTL_RENDER_HPP_
