// File: tests/admin/admin_support.hpp
//
// Helpers for the admin-plane tests on top of the integration fixture:
// running modelpoolctl (or any program) as a child with stdout and stderr
// apart, optionally as another user; a unique unprivileged test user and
// group created with useradd/groupadd and deleted afterwards; a minimal
// HTTP GET over Boost.Beast; and polling a real request until a deadline.
#ifndef MODELPOOL_TESTS_ADMIN_ADMIN_SUPPORT_HPP_
#define MODELPOOL_TESTS_ADMIN_ADMIN_SUPPORT_HPP_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "broker_fixture.hpp"

namespace modelpool::testing {

// Exit status of a wait status; 128 + signal when killed.
int exit_code(int wait_status);
// The error code of a failed reply, "" when it succeeded.
std::string code_of(const json& reply);

// Who a child runs as; nullopt in run() means the test's own identity.
struct Identity {
  uid_t uid;
  gid_t gid;
};

struct Outcome {
  int code = -1;  // exit code
  std::string out, err;
  // stdout parsed as JSON (null when it is not JSON).
  json parsed() const;
};

// Runs argv to completion with stdout and stderr captured separately.
Outcome run(const std::vector<std::string>& argv, std::optional<Identity> as = std::nullopt);

// build/clientlib/modelpoolctl ARGS.
Outcome ctl(std::vector<std::string> args, std::optional<Identity> as = std::nullopt);
// modelpoolctl --run-dir/--pool of `b`, then ARGS.
Outcome ctl(const Broker& b, std::vector<std::string> args);

// Calls `probe` until it returns true or `limit` passes; true when it did.
// Each probe must be a real request, so this never sleeps blindly.
template <typename Probe>
bool eventually(Probe probe, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!probe()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
  return true;
}

// A user and a group made for one test binary and removed afterwards.
// `member` has the group as its primary group; `outsider` is not in it.
class TestUsers {
 public:
  TestUsers();  // throws when useradd/groupadd fail
  ~TestUsers();
  TestUsers(const TestUsers&) = delete;
  TestUsers& operator=(const TestUsers&) = delete;
  const std::string& group() const { return group_; }
  gid_t gid() const { return gid_; }
  Identity member() const { return member_; }
  Identity outsider() const { return outsider_; }

 private:
  std::string group_, member_name_, outsider_name_;
  gid_t gid_ = 0;
  Identity member_{}, outsider_{};
};

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string content_length;  // the header's value, "" without one
  std::string body;
};

// GET http://127.0.0.1:PORT/TARGET with Boost.Beast; throws on I/O errors.
HttpReply http_get(unsigned short port, const std::string& target);
// The same with another method (HEAD, POST, ...).
HttpReply http_request(unsigned short port, const std::string& method, const std::string& target);

// The port from "metrics port N" in the broker's ready line; 0 when absent.
unsigned short metrics_port(const Broker& b);

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_ADMIN_ADMIN_SUPPORT_HPP_
