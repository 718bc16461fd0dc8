// File: tests/admin/exposition_parser.cc
//
// Line by line: comments (HELP, TYPE, others), then samples as
// name{label="value",...} value [timestamp]. The histogram checks run once
// every line is read.
#include "exposition_parser.hpp"

#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

namespace modelpool::testing {
namespace {

const std::regex kMetricName("[a-zA-Z_:][a-zA-Z0-9_:]*");
const std::regex kLabelName("[a-zA-Z_][a-zA-Z0-9_]*");
const std::regex kFloat(R"([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?Inf|NaN)");
const std::regex kTimestamp("-?[0-9]+");

[[noreturn]] void fail(std::size_t line, const std::string& why) {
  throw std::runtime_error("line " + std::to_string(line) + ": " + why);
}

double parse_float(std::size_t line, const std::string& text) {
  if (!std::regex_match(text, kFloat)) fail(line, "\"" + text + "\" is not a float");
  return std::strtod(text.c_str(), nullptr);
}

// Unescapes a HELP docstring (\\ and \n) or a label value (also \").
std::string unescape(std::size_t line, const std::string& text, bool quotes) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out.push_back(text[i]);
      continue;
    }
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (next == '\\' || (quotes && next == '"')) {
      out.push_back(next);
    } else if (next == 'n') {
      out.push_back('\n');
    } else {
      fail(line, "bad escape \\" + std::string(1, next));
    }
    ++i;
  }
  return out;
}

// Parses `{a="x",b="y"}` starting at text[*pos] == '{'; leaves *pos after '}'.
Labels parse_labels(std::size_t line, const std::string& text, std::size_t* pos) {
  Labels labels;
  std::size_t i = *pos + 1;
  while (i < text.size() && text[i] != '}') {
    const std::size_t eq = text.find('=', i);
    if (eq == std::string::npos) fail(line, "label without '='");
    const std::string name = text.substr(i, eq - i);
    if (!std::regex_match(name, kLabelName)) fail(line, "bad label name \"" + name + "\"");
    if (name.rfind("__", 0) == 0) fail(line, "label name \"" + name + "\" is reserved");
    if (eq + 1 >= text.size() || text[eq + 1] != '"') fail(line, "label value must be quoted");
    std::size_t j = eq + 2;
    std::string raw;
    for (; j < text.size() && text[j] != '"'; ++j) {
      raw.push_back(text[j]);
      if (text[j] == '\\' && j + 1 < text.size()) raw.push_back(text[++j]);
    }
    if (j >= text.size()) fail(line, "unterminated label value");
    if (!labels.emplace(name, unescape(line, raw, true)).second)
      fail(line, "label " + name + " repeats");
    i = j + 1;
    if (i < text.size() && text[i] == ',') {
      ++i;
    } else if (i >= text.size() || text[i] != '}') {
      fail(line, "expected ',' or '}' after a label");
    }
  }
  if (i >= text.size()) fail(line, "unterminated label set");
  *pos = i + 1;
  return labels;
}

// The family a sample named `sample` belongs to, given its type.
bool belongs(const Family& f, const std::string& sample) {
  if (f.type == "histogram") {
    return sample == f.name + "_bucket" || sample == f.name + "_sum" || sample == f.name + "_count";
  }
  if (f.type == "summary")
    return sample == f.name || sample == f.name + "_sum" || sample == f.name + "_count";
  return sample == f.name;
}

void check_histogram(const Family& f) {
  std::map<Labels, std::vector<std::pair<double, double>>> buckets;  // series -> (le, count)
  std::map<Labels, double> counts;
  std::set<Labels> sums;
  for (const Sample& s : f.samples) {
    Labels rest = s.labels;
    if (s.name == f.name + "_bucket") {
      auto le = rest.find("le");
      if (le == rest.end()) throw std::runtime_error(f.name + ": a bucket without le");
      const double bound = parse_float(0, le->second);
      rest.erase(le);
      buckets[rest].emplace_back(bound, s.value);
    } else if (s.name == f.name + "_count") {
      counts[rest] = s.value;
    } else {
      sums.insert(rest);
    }
  }
  if (buckets.empty()) throw std::runtime_error(f.name + ": a histogram without buckets");
  for (const auto& [labels, series] : buckets) {
    for (std::size_t i = 1; i < series.size(); ++i) {
      if (!(series[i].first > series[i - 1].first))
        throw std::runtime_error(f.name + ": le not increasing");
      if (series[i].second < series[i - 1].second)
        throw std::runtime_error(f.name + ": bucket counts decrease");
    }
    if (!std::isinf(series.back().first)) throw std::runtime_error(f.name + ": no +Inf bucket");
    auto count = counts.find(labels);
    if (count == counts.end() || count->second != series.back().second) {
      throw std::runtime_error(f.name + ": +Inf bucket differs from _count");
    }
    if (sums.count(labels) == 0) throw std::runtime_error(f.name + ": no _sum");
  }
}

}  // namespace

Exposition Exposition::parse(const std::string& text) {
  if (!text.empty() && text.back() != '\n')
    throw std::runtime_error("the text does not end with a newline");
  Exposition e;
  std::set<std::string> closed;  // families whose block has ended
  std::set<std::pair<std::string, Labels>> seen;
  Family* current = nullptr;
  auto enter = [&](const std::string& name, std::size_t n) -> Family& {
    Family& f = e.families_[name];
    if (current != &f) {
      if (closed.count(name) != 0) fail(n, "the lines of " + name + " are not contiguous");
      if (current != nullptr) closed.insert(current->name);
      current = &f;
      f.name = name;
    }
    return f;
  };
  std::istringstream in(text);
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line.substr(1));
      std::string keyword, name;
      words >> keyword >> name;
      if (keyword != "HELP" && keyword != "TYPE") continue;  // a plain comment
      if (!std::regex_match(name, kMetricName)) fail(n, "bad metric name \"" + name + "\"");
      std::string rest;
      std::getline(words, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      Family& f = enter(name, n);
      if (keyword == "HELP") {
        if (!f.help.empty()) fail(n, "second HELP for " + name);
        f.help = unescape(n, rest, false);
      } else {
        if (!f.type.empty()) fail(n, "second TYPE for " + name);
        if (!f.samples.empty()) fail(n, "TYPE of " + name + " after its samples");
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" &&
            rest != "untyped") {
          fail(n, "unknown type \"" + rest + "\"");
        }
        f.type = rest;
      }
      continue;
    }
    std::size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    Sample s;
    s.name = line.substr(0, pos);
    if (!std::regex_match(s.name, kMetricName)) fail(n, "bad metric name \"" + s.name + "\"");
    if (pos < line.size() && line[pos] == '{') s.labels = parse_labels(n, line, &pos);
    std::istringstream tokens(line.substr(pos));
    std::string value, timestamp, extra;
    tokens >> value >> timestamp >> extra;
    if (pos >= line.size() || line[pos] != ' ') fail(n, "no blank before the value");
    if (!extra.empty()) fail(n, "trailing text \"" + extra + "\"");
    if (!timestamp.empty() && !std::regex_match(timestamp, kTimestamp)) fail(n, "bad timestamp");
    s.value = parse_float(n, value);
    if (current == nullptr || current->type.empty() || !belongs(*current, s.name)) {
      fail(n, s.name + " is not in the block of a family declared by # TYPE");
    }
    if (current->type == "counter" && !(s.value >= 0))
      fail(n, "counter " + s.name + " is negative or NaN");
    if (!seen.emplace(s.name, s.labels).second) fail(n, "series " + s.name + " repeats");
    current->samples.push_back(std::move(s));
  }
  for (const auto& [name, f] : e.families_) {
    if (f.type == "histogram") check_histogram(f);
  }
  return e;
}

const Family* Exposition::family(const std::string& name) const {
  auto it = families_.find(name);
  return it == families_.end() ? nullptr : &it->second;
}

std::optional<double> Exposition::value(const std::string& name, const Labels& labels) const {
  for (const auto& [family_name, f] : families_) {
    for (const Sample& s : f.samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
  }
  return std::nullopt;
}

}  // namespace modelpool::testing
