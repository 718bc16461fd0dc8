// File: tests/admin/exposition_parser.hpp
//
// A strict parser of the Prometheus text exposition format (version 0.0.4),
// for checking what modelpoold serves on /metrics. Stricter than Prometheus
// itself where the broker has no excuse: every sample belongs to a family
// declared by a # TYPE line before it, a family's lines are contiguous, HELP
// and TYPE appear at most once, no series repeats, and histograms are
// complete and consistent (buckets sorted by `le`, cumulative counts never
// decrease, the +Inf bucket equals _count). Throws std::runtime_error naming
// the line and the reason.
#ifndef MODELPOOL_TESTS_ADMIN_EXPOSITION_PARSER_HPP_
#define MODELPOOL_TESTS_ADMIN_EXPOSITION_PARSER_HPP_

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace modelpool::testing {

using Labels = std::map<std::string, std::string>;  // unescaped values

struct Sample {
  std::string name;  // e.g. modelpool_load_seconds_bucket
  Labels labels;
  double value = 0;
};

struct Family {
  std::string name;
  std::string help;  // unescaped
  std::string type;  // counter, gauge, histogram, summary or untyped
  std::vector<Sample> samples;
};

class Exposition {
 public:
  // Parses and validates `text`; throws std::runtime_error("line N: ...").
  static Exposition parse(const std::string& text);

  const std::map<std::string, Family>& families() const { return families_; }
  const Family* family(const std::string& name) const;
  // The value of the series `name{labels}`, nullopt when absent.
  std::optional<double> value(const std::string& name, const Labels& labels = {}) const;

 private:
  std::map<std::string, Family> families_;
};

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_ADMIN_EXPOSITION_PARSER_HPP_
