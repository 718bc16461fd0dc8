// File: broker/logging.cc
//
// Two spdlog formatters (JSON lines, and a syslog priority prefix around
// another formatter) and the choice between them. spdlog calls a sink's
// formatter under the sink's lock, one message at a time.
#include "broker/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace modelpool::broker {
namespace {

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v";

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// `s` as a JSON string literal; bytes that are not UTF-8 (a client string
// cut at 200 bytes may end inside a character) become U+FFFD.
std::string json_string(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// {"ts":"2026-11-25T16:36:58.432Z","level":"info","msg":"...","pid":N,"pool":"..."}
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(const std::string& pool)
      : tail_(",\"pid\":" + std::to_string(::getpid()) + ",\"pool\":" + json_string(pool) + "}\n") {
  }

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    const auto since_epoch = duration_cast<milliseconds>(msg.time.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(since_epoch / 1000);
    std::tm utc{};
    ::gmtime_r(&secs, &utc);
    char ts[40];
    const int n = std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                                utc.tm_min, utc.tm_sec, static_cast<int>(since_epoch % 1000));
    append(dest, "{\"ts\":\"");
    append(dest, std::string_view(ts, n > 0 ? static_cast<std::size_t>(n) : 0));
    append(dest, "\",\"level\":\"");
    const auto level = spdlog::level::to_string_view(msg.level);
    append(dest, std::string_view(level.data(), level.size()));
    append(dest, "\",\"msg\":");
    append(dest, json_string(std::string_view(msg.payload.data(), msg.payload.size())));
    append(dest, tail_);
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(*this);
  }

 private:
  std::string tail_;  // the fields that never change, and the end of the line
};

// syslog priority of a level, as journald reads it from "<N>" (sd-daemon(3)).
char priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return '2';
    case spdlog::level::err:
      return '3';
    case spdlog::level::warn:
      return '4';
    case spdlog::level::info:
      return '6';
    default:
      return '7';  // debug, trace
  }
}

// "<N>" and then whatever `inner` writes.
class PriorityPrefix final : public spdlog::formatter {
 public:
  explicit PriorityPrefix(std::unique_ptr<spdlog::formatter> inner) : inner_(std::move(inner)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const char prefix[3] = {'<', priority(msg.level), '>'};
    dest.append(prefix, prefix + sizeof prefix);
    inner_->format(msg, dest);
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<PriorityPrefix>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

}  // namespace

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  char end = 0;
  if (std::sscanf(stream, "%llu:%llu%c", &dev, &ino, &end) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

void setup_logging(const Config& c) {
  std::shared_ptr<spdlog::logger> logger;
  if (c.log_file.empty()) {
    logger = spdlog::stderr_color_mt("modelpoold");
  } else {
    logger = spdlog::basic_logger_mt("modelpoold", c.log_file);
  }
  const bool to_journal = c.log_file.empty() && stderr_is_journal();
  if (c.log_format == "json") {
    std::unique_ptr<spdlog::formatter> f = std::make_unique<JsonFormatter>(c.pool);
    if (to_journal) f = std::make_unique<PriorityPrefix>(std::move(f));
    logger->set_formatter(std::move(f));
  } else if (c.log_format == "journal" || to_journal) {
    logger->set_formatter(std::make_unique<PriorityPrefix>(
        std::make_unique<spdlog::pattern_formatter>(kTextPattern)));
  } else {
    logger->set_pattern(kTextPattern);  // text: unchanged since the first release
  }
  logger->set_level(spdlog::level::from_str(c.log_level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace modelpool::broker
