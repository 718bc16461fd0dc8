// File: tests/admin/ctl_timeout_test.cc
//
// The modelpoolctl binary against a broker that never answers (a Unix socket
// that listens and never reads: the kernel completes every connect), and its
// --json error objects and --version. A hung broker must cost a script a few
// seconds and exit 3, never hang it.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <regex>

#include "admin_support.hpp"

namespace modelpool::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kOk = 0, kBrokerError = 1, kUsage = 2, kNoBroker = 3;

// Listens at DIR/hung.sock and never accepts, reads or writes.
class HungSocket {
 public:
  explicit HungSocket(const std::string& dir) : path_(dir + "/hung.sock") {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 16) != 0) {
      throw std::runtime_error("cannot listen on " + path_ + ": " + std::strerror(errno));
    }
  }
  ~HungSocket() { close(); }
  HungSocket(const HungSocket&) = delete;
  HungSocket& operator=(const HungSocket&) = delete;

  const std::string& path() const { return path_; }
  // Closing the listener resets the connections still in its backlog, so a
  // client blocked on one wakes up.
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

struct Timed {
  Outcome outcome;
  milliseconds took;
  bool finished_in_time;
};

// modelpoolctl ARGS, given at most `limit`: past it the hung socket is
// closed (which ends the client) and finished_in_time is false.
Timed ctl_within(HungSocket& hung, std::vector<std::string> args, milliseconds limit) {
  const auto start = Clock::now();
  auto done = std::async(std::launch::async, [args] { return ctl(args); });
  const bool in_time = done.wait_for(limit) == std::future_status::ready;
  if (!in_time) hung.close();
  Outcome o = done.get();
  return {o, std::chrono::duration_cast<milliseconds>(Clock::now() - start), in_time};
}

TEST(CtlTimeout, HungBrokerIsExitThreeAfterTheDefaultFiveSeconds) {
  ScratchDir dir;
  HungSocket hung(dir.path());
  const Timed t = ctl_within(hung, {"--socket", hung.path(), "stats"}, milliseconds(30000));
  ASSERT_TRUE(t.finished_in_time) << "modelpoolctl still waiting after 30 s";
  EXPECT_EQ(t.outcome.code, kNoBroker) << t.outcome.err;
  EXPECT_EQ(t.outcome.out, "");
  EXPECT_EQ(t.outcome.err, "the broker at " + hung.path() +
                               " did not answer within 5 s (it may be hung or overloaded; "
                               "--timeout sets the limit, 0 for none)\n");
  EXPECT_GE(t.took, milliseconds(4900));
}

TEST(CtlTimeout, TimeoutOptionSetsTheLimit) {
  ScratchDir dir;
  HungSocket hung(dir.path());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--timeout", "300ms", "health"},
           {"--timeout-ms", "300", "health"},
           {"load", "m.bin", "--timeout=300ms"},
       }) {
    std::vector<std::string> full = {"--socket", hung.path()};
    full.insert(full.end(), args.begin(), args.end());
    const Timed t = ctl_within(hung, full, milliseconds(20000));
    ASSERT_TRUE(t.finished_in_time) << args[0];
    EXPECT_EQ(t.outcome.code, kNoBroker) << t.outcome.err;
    EXPECT_NE(t.outcome.err.find("did not answer within 300 ms"), std::string::npos)
        << t.outcome.err;
    EXPECT_LT(t.took, milliseconds(4000)) << args[0];
  }
}

// A load is answered when the file is resident, which may take longer than
// any default; without --timeout modelpoolctl first checks that the broker
// answers at all (health, within 5 s), then waits for the load.
TEST(CtlTimeout, LoadWithoutTimeoutStillDetectsAHungBroker) {
  ScratchDir dir;
  HungSocket hung(dir.path());
  const Timed t = ctl_within(hung, {"--socket", hung.path(), "load", "m.bin"}, milliseconds(30000));
  ASSERT_TRUE(t.finished_in_time) << "modelpoolctl load still waiting after 30 s";
  EXPECT_EQ(t.outcome.code, kNoBroker) << t.outcome.err;
  EXPECT_NE(t.outcome.err.find("did not answer within 5 s"), std::string::npos) << t.outcome.err;
}

TEST(CtlTimeout, BadDurationsAreUsageErrors) {
  for (const std::string bad : {"soon", "-1", "5m", "", "ms", "99999999999"}) {
    const Outcome o = ctl({"--timeout", bad, "health"});
    EXPECT_EQ(o.code, kUsage) << bad;
    EXPECT_NE(o.err.find("--timeout needs a duration"), std::string::npos) << o.err;
  }
}

TEST(CtlJson, EveryFailureIsAJsonObjectOnStdout) {
  ScratchDir dir;
  HungSocket hung(dir.path());
  auto expect_error = [](const Outcome& o, int code, const std::string& error_code,
                         const std::string& says) {
    EXPECT_EQ(o.code, code) << o.out << o.err;
    EXPECT_NE(o.err.find(says), std::string::npos) << o.err;  // stderr keeps its line
    const json j = o.parsed();
    ASSERT_TRUE(j.is_object()) << o.out;
    EXPECT_EQ(j.value("ok", true), false) << o.out;
    EXPECT_EQ(j["error"].value("code", ""), error_code) << o.out;
    EXPECT_NE(j["error"].value("message", "").find(says), std::string::npos) << o.out;
  };

  const Timed t = ctl_within(hung, {"--socket", hung.path(), "--json", "--timeout", "1", "stats"},
                             milliseconds(20000));
  ASSERT_TRUE(t.finished_in_time);
  expect_error(t.outcome, kNoBroker, "timeout", "did not answer within 1 s");

  expect_error(ctl({"--socket", dir.path() + "/none.sock", "health", "--json"}), kNoBroker,
               "unavailable", "no modelpool broker is running at " + dir.path() + "/none.sock");
  expect_error(ctl({"--json", "frobnicate"}), kUsage, "usage", "unknown command 'frobnicate'");

  ScratchDir models;
  Broker b(models.path());
  b.start();
  expect_error(ctl(b, {"evict", "absent.bin", "--json"}), kBrokerError, "not_found", "absent.bin");
  // Text mode prints the line on stderr only.
  const Outcome text = ctl(b, {"evict", "absent.bin"});
  EXPECT_EQ(text.code, kBrokerError);
  EXPECT_EQ(text.out, "");
  EXPECT_EQ(text.err.rfind("error: not_found: ", 0), 0U) << text.err;
}

TEST(CtlVersion, PrintsItsVersionAndHelpNamesTheNewOptions) {
  const Outcome v = ctl({"--version"});
  EXPECT_EQ(v.code, kOk);
  EXPECT_TRUE(std::regex_match(v.out, std::regex("modelpoolctl [0-9]+\\.[0-9]+\\.[0-9]+\n")))
      << v.out;
  const Outcome help = ctl({"--help"});
  for (const char* says : {"--timeout D", "default: 5s", "--version",
                           "3 no broker is running, or it did not answer within the timeout"}) {
    EXPECT_NE(help.out.find(says), std::string::npos) << says;
  }
}

}  // namespace
}  // namespace modelpool::testing
