// File: tests/security/worker_check_test.cc
//
// A worker checks who it talks to: a broker running as another user (not
// the worker's own, not root, not $MODELPOOL_BROKER_UID) is refused with
// kForbidden naming both users, and a segment that is not the broker's own
// (another owner, or writable by others) is refused before it is mapped.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "fake_broker.hpp"
#include "modelpool/client.hpp"
#include "security_support.hpp"

namespace modelpool::testing {
namespace {

namespace fs = std::filesystem;

// Sets or clears $MODELPOOL_BROKER_UID for one scope.
class BrokerUidEnv {
 public:
  explicit BrokerUidEnv(const std::string& value) {
    ::setenv("MODELPOOL_BROKER_UID", value.c_str(), 1);
  }
  ~BrokerUidEnv() { ::unsetenv("MODELPOOL_BROKER_UID"); }
};

ErrorCode connect_error(const std::string& socket, std::string* message) {
  try {
    Client c = Client::connect(socket, ClientOptions{std::chrono::milliseconds(0), true});
  } catch (const Error& e) {
    *message = e.what();
    return e.code();
  }
  return ErrorCode::kOk;
}

TEST(WorkerCheck, BrokerOfAnotherUserIsRefusedUnlessExpected) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the broker as a throwaway user";
  TestUsers users;
  const Identity other = users.member();
  ScratchDir models;
  models.write_random("m.bin", 1 << 20, 9);
  ASSERT_EQ(::chmod(models.path().c_str(), 0755), 0);
  Broker b(models.path());
  Child broker(setpriv_argv(other, b.argv()));
  auto line = broker.read_line();
  ASSERT_TRUE(line && line->find("ready") != std::string::npos);

  ::unsetenv("MODELPOOL_BROKER_UID");
  std::string message;
  EXPECT_EQ(connect_error(b.worker_socket(), &message), ErrorCode::kForbidden) << message;
  EXPECT_NE(message.find("uid " + std::to_string(other.uid) + ")"), std::string::npos) << message;
  EXPECT_NE(message.find("root (uid 0)"), std::string::npos) << message;
  {
    BrokerUidEnv expect(std::to_string(other.uid));
    Client c = Client::connect(b.worker_socket());
    Model m = c.acquire("m.bin");
    EXPECT_EQ(m.size(), 1U << 20);
    EXPECT_EQ(std::memcmp(m.bytes().data(), read_file(models.path() + "/m.bin").data(), 1 << 20),
              0);
  }
  broker.kill(SIGTERM);
  EXPECT_EQ(exit_code(broker.wait()), 0);
  ::unlink(b.segment_path().c_str());
}

// A hello that points at `segment` instead of the fake broker's own.
void point_hello_at(FakeBroker& fake, const std::string& segment) {
  fake.set_rewriter([segment](const proto::Request& req, const std::string& reply) {
    if (req.op != "hello") return reply;
    json j = json::parse(reply);
    j["segment_path"] = segment;
    return j.dump();
  });
}

std::string copy_of(const std::string& from, const std::string& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  return to;
}

TEST(WorkerCheck, SegmentOfAnotherUidThanTheBrokersIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to a throwaway user";
  TestUsers users;
  FakeBroker fake;  // runs as root, the test's user
  fake.add_model("m", std::string(4096, 'x'));
  ScratchDir scratch;
  const std::string theirs = copy_of(fake.segment_path(), scratch.path() + "/theirs.segment");
  ASSERT_EQ(::chown(theirs.c_str(), users.member().uid, users.member().gid), 0);
  ASSERT_EQ(::chmod(theirs.c_str(), 0640), 0);
  point_hello_at(fake, theirs);
  std::string message;
  EXPECT_EQ(connect_error(fake.worker_socket(), &message), ErrorCode::kForbidden) << message;
  EXPECT_NE(message.find(theirs), std::string::npos) << message;
  EXPECT_NE(message.find("uid " + std::to_string(users.member().uid) + ")"), std::string::npos)
      << message;
  EXPECT_NE(message.find("the broker runs as root (uid 0)"), std::string::npos) << message;
}

TEST(WorkerCheck, SegmentWritableByOthersIsRefused) {
  FakeBroker fake;  // the test's own user: the peer check passes
  fake.add_model("m", std::string(4096, 'x'));
  ScratchDir scratch;
  const std::string open_file = copy_of(fake.segment_path(), scratch.path() + "/open.segment");
  ASSERT_EQ(::chmod(open_file.c_str(), 0666), 0);
  point_hello_at(fake, open_file);
  std::string message;
  EXPECT_EQ(connect_error(fake.worker_socket(), &message), ErrorCode::kForbidden) << message;
  EXPECT_NE(message.find("mode 0666"), std::string::npos) << message;
  // The broker's own, private file is fine.
  point_hello_at(fake, fake.segment_path());
  EXPECT_EQ(connect_error(fake.worker_socket(), &message), ErrorCode::kOk) << message;
}

TEST(WorkerCheck, SymlinkedSegmentIsNotFollowed) {
  FakeBroker fake;
  ScratchDir scratch;
  const std::string link = scratch.path() + "/link.segment";
  ASSERT_EQ(::symlink(fake.segment_path().c_str(), link.c_str()), 0);
  point_hello_at(fake, link);
  std::string message;
  EXPECT_EQ(connect_error(fake.worker_socket(), &message), ErrorCode::kForbidden) << message;
}

}  // namespace
}  // namespace modelpool::testing
