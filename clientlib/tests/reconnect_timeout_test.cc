// File: clientlib/tests/reconnect_timeout_test.cc
//
// How long acquire() tries to reach a broker that went away: the explicit
// ClientOptions::reconnect_timeout, else $MODELPOOL_RECONNECT_TIMEOUT_MS as it
// is when the Client is created (a later setenv does not change that Client).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <optional>
#include <string>

#include "clientlib/tests/fake_broker.hpp"
#include "modelpool/client.hpp"

namespace modelpool {
namespace {

using Clock = std::chrono::steady_clock;
using testing::FakeBroker;

constexpr const char* kEnv = "MODELPOOL_RECONNECT_TIMEOUT_MS";

// Sets an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_.empty()) {
      ::unsetenv(name_);
    } else {
      ::setenv(name_, old_.c_str(), 1);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::string old_;
};

// acquire() on a Client whose broker stopped: the error code, and how long
// it took to give up.
std::pair<ErrorCode, std::chrono::milliseconds> acquire_after_stop(Client& client,
                                                                   FakeBroker& broker) {
  broker.stop();
  const auto start = Clock::now();
  ErrorCode code = ErrorCode::kOk;
  try {
    client.acquire("a");
  } catch (const Error& e) {
    code = e.code();
  }
  return {code, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)};
}

TEST(ClientReconnectTimeout, TheEnvironmentIsReadWhenTheClientIsCreated) {
  FakeBroker broker;
  broker.add_model("a", "aaaa");
  std::optional<Client> client;
  {
    ScopedEnv once(kEnv, "0");  // one attempt
    client.emplace(Client::connect(broker.worker_socket()));
  }
  ScopedEnv later(kEnv, "30000");  // set after creation: not this Client's
  const auto [code, took] = acquire_after_stop(*client, broker);
  EXPECT_EQ(code, ErrorCode::kUnavailable);
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(ClientReconnectTimeout, TheOptionOverridesTheEnvironment) {
  FakeBroker broker;
  broker.add_model("a", "aaaa");
  ScopedEnv env(kEnv, "30000");
  Client client =
      Client::connect(broker.worker_socket(), ClientOptions{std::chrono::milliseconds(0)});
  const auto [code, took] = acquire_after_stop(client, broker);
  EXPECT_EQ(code, ErrorCode::kUnavailable);
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(ClientReconnectTimeout, TheDefaultPoolTakesOptionsToo) {
  FakeBroker broker;
  broker.add_model("a", "aaaa");
  ScopedEnv socket("MODELPOOL_SOCKET", broker.worker_socket().c_str());
  ScopedEnv env(kEnv, "30000");
  Client client = Client::connect(ClientOptions{std::chrono::milliseconds(200)});
  const auto [code, took] = acquire_after_stop(client, broker);
  EXPECT_EQ(code, ErrorCode::kUnavailable);
  EXPECT_GE(took, std::chrono::milliseconds(150));
  EXPECT_LT(took, std::chrono::seconds(5));
}

}  // namespace
}  // namespace modelpool
