// File: clientlib/tests/client_test.cc
//
// The C++ client against FakeBroker: connect, acquire/map/release, error
// mapping, protocol violations, and reconnecting after a broker restart.
#include "modelpool/client.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "clientlib/tests/fake_broker.hpp"

namespace modelpool {
namespace {

using testing::FakeBroker;

std::string pattern(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

bool same_bytes(std::span<const std::byte> span, const std::string& want) {
  return span.size() == want.size() && std::memcmp(span.data(), want.data(), want.size()) == 0;
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kOk;
}

TEST(ClientConnect, MissingSocketIsUnavailableAndNamesThePath) {
  try {
    Client::connect("/tmp/modelpool-no-such-dir/x.sock");
    FAIL() << "connected to nothing";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_EQ(e.code_name(), "unavailable");
    EXPECT_NE(std::string(e.what()).find(
                  "cannot connect to modelpool broker at /tmp/modelpool-no-such-dir/x.sock: "),
              std::string::npos)
        << e.what();
  }
}

TEST(ClientConnect, HelloGivesPoolSegmentAndPageSize) {
  FakeBroker broker;
  Client client = Client::connect(broker.worker_socket());
  EXPECT_EQ(client.pool(), "pool");
  EXPECT_EQ(client.segment_path(), broker.segment_path());
  EXPECT_EQ(client.page_size(), 4096U);
}

TEST(ClientConnect, OtherProtocolVersionIsRejected) {
  FakeBroker broker;
  broker.set_rewriter([](const proto::Request& req, const std::string& normal) {
    if (req.op != "hello") return normal;
    auto j = nlohmann::json::parse(normal);
    j["proto"] = 2;
    return j.dump();
  });
  EXPECT_EQ(code_of([&] { Client::connect(broker.worker_socket()); }), ErrorCode::kProtocol);
}

TEST(ClientAcquire, MapsTheBytesAndReleasesOnDestruction) {
  FakeBroker broker;
  const std::string bytes = pattern(3 << 20, 'a');
  const auto& m = broker.add_model("m.bin", bytes);
  Client client = Client::connect(broker.worker_socket());
  {
    Model model = client.acquire("m.bin", {.wait = std::chrono::milliseconds(5), .populate = true});
    EXPECT_TRUE(same_bytes(model.bytes(), bytes));
    EXPECT_EQ(model.size(), bytes.size());
    EXPECT_EQ(model.checksum(), m.checksum);
    EXPECT_EQ(model.generation(), 1U);
    EXPECT_EQ(model.name(), "m.bin");
    EXPECT_EQ(model.format(), Format::raw);
    EXPECT_TRUE(model.cached());
    EXPECT_NE(model.handle(), 0U);
    EXPECT_TRUE(model.tensors().empty());
    EXPECT_EQ(model.metadata_json(), "{}");
    EXPECT_EQ(broker.live_handles(), 1);
    Model moved = std::move(model);
    EXPECT_TRUE(model.bytes().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(broker.live_handles(), 1);
  }
  EXPECT_TRUE(broker.await_live_handles(0));
  EXPECT_EQ(broker.releases(), 1);
}

TEST(ClientAcquire, ExplicitReleaseIsIdempotent) {
  FakeBroker broker;
  broker.add_model("m", pattern(100, 'x'));
  Client client = Client::connect(broker.worker_socket());
  Model model = client.acquire("m");
  model.release();
  model.release();
  EXPECT_TRUE(model.bytes().empty());
  EXPECT_EQ(model.size(), 100U);
  EXPECT_EQ(code_of([&] { (void)model.tensors(); }), ErrorCode::kStaleHandle);
  EXPECT_TRUE(broker.await_releases(1));
  // The release's reply is read and dropped by the next call; the second
  // release() sent nothing.
  Model again = client.acquire("m");
  EXPECT_EQ(again.size(), 100U);
  EXPECT_EQ(broker.releases(), 1);
}

// Releases ask for no reply and do not wait for the broker.
TEST(ClientRelease, ManyReleasesInARowAreAllDelivered) {
  FakeBroker broker;
  broker.add_model("m", pattern(64, 'm'));
  Client client = Client::connect(broker.worker_socket());
  std::vector<Model> models;
  for (int i = 0; i < 500; ++i) models.push_back(client.acquire("m"));
  ASSERT_EQ(broker.live_handles(), 500);
  models.clear();  // 500 releases, no other request
  EXPECT_TRUE(broker.await_releases(500));
  EXPECT_EQ(broker.live_handles(), 0);
  Model m = client.acquire("m");
  EXPECT_EQ(m.size(), 64U);
  EXPECT_EQ(broker.live_handles(), 1);
}

TEST(ClientRelease, AReplyNobodyAskedForIsAProtocolError) {
  FakeBroker broker;
  broker.add_model("m", "abc");
  Client client = Client::connect(broker.worker_socket());
  broker.set_rewriter([](const proto::Request& req, const std::string& normal) {
    if (req.op != "release") return normal;
    return proto::encode_ok(req.id, nlohmann::json::object());  // a reply it did not ask for
  });
  client.acquire("m").release();
  EXPECT_EQ(code_of([&] { client.acquire("m"); }), ErrorCode::kProtocol);
}

TEST(ClientAcquire, ANameThatIsNotUtf8IsBadRequestAndKeepsTheConnection) {
  FakeBroker broker;
  broker.add_model("m", "abc");
  Client client = Client::connect(broker.worker_socket());
  EXPECT_EQ(code_of([&] { client.acquire("bad \xff name"); }), ErrorCode::kBadRequest);
  EXPECT_EQ(client.acquire("m").size(), 3U);
}

TEST(ClientAcquire, EmptyModelHasAnEmptySpan) {
  FakeBroker broker;
  broker.add_model("empty", "");
  Client client = Client::connect(broker.worker_socket());
  Model model = client.acquire("empty");
  EXPECT_TRUE(model.bytes().empty());
  EXPECT_EQ(model.size(), 0U);
}

TEST(ClientAcquire, BrokerErrorsKeepCodeAndMessageAndTheConnection) {
  FakeBroker broker;
  broker.add_model("m", "abc");
  Client client = Client::connect(broker.worker_socket());
  try {
    client.acquire("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_STREQ(e.what(), "no model nope");
  }
  EXPECT_EQ(client.acquire("m").size(), 3U);
}

TEST(ClientAcquire, ModelOutlivesItsClient) {
  FakeBroker broker;
  const std::string bytes = pattern(5000, 'q');
  broker.add_model("m", bytes);
  std::optional<Model> model;
  {
    Client client = Client::connect(broker.worker_socket());
    model.emplace(client.acquire("m"));
  }
  EXPECT_TRUE(same_bytes(model->bytes(), bytes));
  model.reset();
  EXPECT_TRUE(broker.await_releases(1));
}

TEST(ClientAcquire, MismatchedReplyIdIsAProtocolError) {
  FakeBroker broker;
  broker.add_model("m", "abc");
  Client client = Client::connect(broker.worker_socket());
  broker.set_rewriter([](const proto::Request& req, const std::string& normal) {
    if (req.op != "acquire") return normal;
    auto j = nlohmann::json::parse(normal);
    j["id"] = 999;
    return j.dump();
  });
  EXPECT_EQ(code_of([&] { client.acquire("m"); }), ErrorCode::kProtocol);
}

TEST(ClientAcquire, ExtentOutsideTheSegmentIsRefusedAndReleased) {
  FakeBroker broker;
  broker.add_model("m", "abc");
  Client client = Client::connect(broker.worker_socket());
  broker.set_rewriter([](const proto::Request& req, const std::string& normal) {
    if (req.op != "acquire") return normal;
    auto j = nlohmann::json::parse(normal);
    j["offset"] = FakeBroker::kSegmentSize;
    return j.dump();
  });
  EXPECT_EQ(code_of([&] { client.acquire("m"); }), ErrorCode::kProtocol);
  EXPECT_TRUE(broker.await_live_handles(0));
}

TEST(ClientAcquire, HugePagesGiveAnAlignedMapping) {
  FakeBroker broker(2ULL << 20);
  const std::string bytes = pattern(3 << 20, 'h');
  broker.add_model("m", bytes);
  Client client = Client::connect(broker.worker_socket());
  Model model = client.acquire("m");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(model.bytes().data()) % (2U << 20), 0U);
  EXPECT_TRUE(same_bytes(model.bytes(), bytes));
}

TEST(ClientAcquire, ManyThreadsShareOneClient) {
  FakeBroker broker;
  broker.add_model("a", pattern(10000, 'a'));
  broker.add_model("b", pattern(20000, 'b'));
  Client client = Client::connect(broker.worker_socket());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Model m = client.acquire((t + i) % 2 == 0 ? "a" : "b");
        EXPECT_FALSE(m.bytes().empty());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(broker.acquires(), 200);
  EXPECT_TRUE(broker.await_live_handles(0));
  EXPECT_EQ(broker.releases(), 200);
}

TEST(ClientFork, AChildNeitherReleasesNorUsesTheParentsConnection) {
  FakeBroker broker;
  broker.add_model("m", "abc");
  Client client = Client::connect(broker.worker_socket());
  Model model = client.acquire("m");
  const pid_t pid = ::fork();
  if (pid == 0) {
    model.release();  // must not touch the parent's socket
    const bool refused = code_of([&] { client.acquire("m"); }) == ErrorCode::kUnavailable;
    ::_exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(broker.live_handles(), 1);
  EXPECT_EQ(client.acquire("m").size(), 3U);  // the parent's conversation is intact
}

TEST(ClientRestart, NextAcquireReconnectsAndReprotectsLiveModels) {
  FakeBroker broker;
  const std::string bytes = pattern(4096, 'r');
  broker.add_model("a", bytes);
  broker.add_model("b", "bbb");
  Client client =
      Client::connect(broker.worker_socket(), ClientOptions{std::chrono::milliseconds(0)});
  Model a = client.acquire("a");
  const std::uint64_t old_handle = a.handle();
  broker.stop();  // a broker restart drops every handle
  EXPECT_EQ(code_of([&] { client.acquire("b"); }), ErrorCode::kUnavailable);
  EXPECT_TRUE(same_bytes(a.bytes(), bytes));  // still readable while the broker is down
  broker.start();
  Model b = client.acquire("b");
  EXPECT_EQ(broker.live_handles(), 2);  // a was re-acquired
  EXPECT_NE(a.handle(), old_handle);
  a.release();
  EXPECT_TRUE(broker.await_live_handles(1));
}

TEST(ClientRestart, ANewGenerationOrphansTheOldModel) {
  FakeBroker broker;
  broker.add_model("a", "aaaa");
  broker.add_model("b", "bbb");
  Client client = Client::connect(broker.worker_socket());
  Model a = client.acquire("a");
  broker.stop();
  broker.set_generation("a", 2);
  broker.start();
  Model b = client.acquire("b");        // finds the connection dead, reconnects, retries
  EXPECT_EQ(broker.live_handles(), 1);  // only b: a's re-acquire did not match
  a.release();                          // nothing to send
  EXPECT_EQ(broker.live_handles(), 1);
  EXPECT_EQ(a.generation(), 1U);
}

}  // namespace
}  // namespace modelpool
