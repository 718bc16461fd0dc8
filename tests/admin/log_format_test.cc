// File: tests/admin/log_format_test.cc
//
// --log-format through the real broker: json lines that parse whatever a
// client put in a name or an op (quotes, backslashes, control bytes, a
// UTF-8 character cut at the 200-byte limit), with UTC timestamps even when
// the broker's local time zone is not UTC; and journald priorities ("<N>")
// when stderr is the stream $JOURNAL_STREAM names, and only then.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "admin_support.hpp"

namespace modelpool::testing {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS.mmmZ" read as UTC; -1 when malformed.
double parse_utc(const std::string& ts) {
  static const std::regex kRfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  if (!std::regex_match(ts, kRfc3339)) return -1;
  std::tm tm{};
  if (::strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return -1;
  return static_cast<double>(::timegm(&tm)) + std::stod(ts.substr(20, 3)) / 1000;
}

// "DEV:INO" of `path`, as systemd puts in $JOURNAL_STREAM.
std::string dev_ino(const std::string& path, long ino_delta = 0) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("stat " + path);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + ino_delta);
}

// The broker in `b` started with `env` set (and unset again once it runs).
void start_with(Broker& b, const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  b.start();
  for (const auto& [k, v] : env) ::unsetenv(k.c_str());
}

// A warning whose op needs every escape, and one whose 200-byte cut ends
// inside a UTF-8 character.
void send_bad_ops(const Broker& b) {
  RawConn rude(b.worker_socket());
  rude.request({{"op", "no\"such\\op\n\x01"}});
  rude.request({{"op", std::string(199, 'x') + "\xc3\xa9"}});  // 199 x, then é
}

// A name with a quote, a backslash, NEL and LINE SEPARATOR (newlines to
// some readers, allowed in model names).
const std::string kOddName = "odd \"q\" \xc2\x85 \xe2\x80\xa8 back\\slash.bin";

class LogFormat : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return scratch_.path() + "/" + name; }
  ScratchDir models_, scratch_;
};

TEST_F(LogFormat, JsonEveryLineIsOneObjectWithUtcTimeLevelAndEscapedMessage) {
  models_.write_random("m.bin", 1 << 20, 1);
  models_.write_random(kOddName, 1 << 20, 2);
  Broker b(models_.path(),
           {"--log-format", "json", "--log-level", "debug", "--log-file", path("broker.log")});
  start_with(b, {{"TZ", "XYZ-5"}});  // local time is UTC+5: ts must not follow it
  {
    RawConn c(b.worker_socket());
    ASSERT_TRUE(c.request({{"op", "acquire"}, {"model", "m.bin"}})["ok"].get<bool>());
    ASSERT_TRUE(c.request({{"op", "acquire"}, {"model", kOddName}})["ok"].get<bool>());
  }
  send_bad_ops(b);
  const pid_t pid = b.pid();
  ASSERT_EQ(exit_code(b.stop(SIGTERM)), 0);

  const double now = static_cast<double>(::time(nullptr));
  std::map<std::string, std::vector<std::string>> by_level;
  for (const std::string& line : lines_of(read_file(path("broker.log")))) {
    json j;
    ASSERT_NO_THROW(j = json::parse(line)) << line;
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_EQ(j.size(), 5U) << line;
    const double t = parse_utc(j.value("ts", ""));
    EXPECT_GT(t, now - 300) << line;  // UTC, not UTC+5 (which is 18000 s off)
    EXPECT_LT(t, now + 5) << line;
    EXPECT_EQ(j["pid"], pid) << line;
    EXPECT_EQ(j["pool"], b.pool()) << line;
    ASSERT_TRUE(j["msg"].is_string()) << line;
    by_level[j.value("level", "?")].push_back(j["msg"].get<std::string>());
  }
  for (const auto& [level, msgs] : by_level) {
    EXPECT_TRUE(level == "debug" || level == "info" || level == "warning") << level;
  }
  const auto has = [&](const std::string& level, const std::string& text) {
    for (const auto& m : by_level[level]) {
      if (m.find(text) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("info", "load started: m.bin generation 1")) << by_level["info"].size();
  EXPECT_TRUE(has("info", "load started: " + kOddName + " generation 1"));
  EXPECT_TRUE(has("debug", "acquired " + kOddName + " generation 1 as handle"));
  EXPECT_TRUE(has("info", "received SIGTERM, shutting down"));
  // The message is the text format's: log_text() escaped the op, JSON escaped that.
  EXPECT_TRUE(has("warning", "sent unknown op \"no\"such\\\\op\\n\\x01\""));
  EXPECT_TRUE(has("warning", std::string(199, 'x') + "\xef\xbf\xbd...[+1 bytes]"))
      << "the cut character becomes U+FFFD";
}

TEST_F(LogFormat, JournalPrioritiesWhenStderrIsTheJournal) {
  models_.write_random("m.bin", 1 << 20, 1);
  for (const std::string format : {"text", "json"}) {
    const std::string err = path("stderr-" + format);
    std::ofstream(err).flush();  // the file journald's stream would be
    Broker b(models_.path(), {"--log-format", format, "--log-level", "info"});
    b.capture_stderr(err);
    start_with(b, {{"JOURNAL_STREAM", dev_ino(err)}});
    {
      RawConn c(b.worker_socket());
      ASSERT_TRUE(c.request({{"op", "acquire"}, {"model", "m.bin"}})["ok"].get<bool>());
    }
    send_bad_ops(b);
    ASSERT_EQ(exit_code(b.stop(SIGTERM)), 0);

    const std::map<std::string, std::string> priority = {
        {"debug", "<7>"}, {"info", "<6>"}, {"warning", "<4>"}};
    std::map<std::string, int> seen;
    const std::regex text_line(R"(<([0-9])>\d{4}-\d{2}-\d{2}T[0-9:.]+ (\w+) .*)");
    for (const std::string& line : lines_of(read_file(err))) {
      ASSERT_EQ(line[0], '<') << format << ": " << line;
      std::string level;
      if (format == "text") {
        std::smatch m;
        ASSERT_TRUE(std::regex_match(line, m, text_line)) << line;
        level = m[2];
      } else {
        json j;
        ASSERT_NO_THROW(j = json::parse(line.substr(3))) << line;
        level = j.value("level", "?");
      }
      ASSERT_TRUE(priority.contains(level)) << line;
      EXPECT_EQ(line.substr(0, 3), priority.at(level)) << line;
      ++seen[level];
    }
    EXPECT_GE(seen["info"], 3) << format;  // load started, finished, serving, stopping...
    EXPECT_EQ(seen["warning"], 2) << format;
  }
}

TEST_F(LogFormat, InheritedJournalStreamLeavesTextAloneAndJournalFormatForcesPriorities) {
  const std::string err = path("stderr");
  std::ofstream(err).flush();
  Broker inherited(models_.path(), {"--log-level", "info"});
  inherited.capture_stderr(err);
  // A parent's journal stream: another inode than this stderr's.
  start_with(inherited, {{"JOURNAL_STREAM", dev_ino(err, 1)}});
  ASSERT_EQ(exit_code(inherited.stop(SIGTERM)), 0);
  const auto text = lines_of(read_file(err));
  ASSERT_FALSE(text.empty());
  for (const auto& line : text) {
    EXPECT_TRUE(std::regex_match(line, std::regex(R"(\d{4}-\d{2}-\d{2}T[0-9:.]+ info .*)")))
        << line;
  }

  Broker forced(models_.path(), {"--log-format", "journal", "--log-level", "info", "--log-file",
                                 path("journal.log")});
  forced.start();
  send_bad_ops(forced);
  ASSERT_EQ(exit_code(forced.stop(SIGTERM)), 0);
  const auto prefixed = lines_of(read_file(path("journal.log")));
  ASSERT_FALSE(prefixed.empty());
  for (const auto& line : prefixed) {
    EXPECT_TRUE(std::regex_match(line, std::regex(R"(<6>\S+ info .*|<4>\S+ warning .*)"))) << line;
  }
}

}  // namespace
}  // namespace modelpool::testing
