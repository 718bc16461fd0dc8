// File: tests/admin/access_test.cc
//
// Access control with real, unprivileged users: a broker started with
// --group G lets members of G acquire (and map) models through the worker
// socket, keeps everyone else off it, and keeps admin ops to its owner.
// Needs root for useradd/groupadd and setuid; skipped otherwise.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "admin_support.hpp"

namespace modelpool::testing {
namespace {

class Access : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create test users and switch to them";
    users_ = std::make_unique<TestUsers>();
    models_.write_random("m.bin", 2 << 20, 7);
    broker_ = std::make_unique<Broker>(
        models_.path(), std::vector<std::string>{"--group", users_->group(), "--log-level", "info",
                                                 "--log-file", models_.path() + "/broker.log"});
    broker_->start();
  }
  void TearDown() override {
    broker_.reset();  // before the users go
    users_.reset();
  }
  Outcome worker_as(Identity who) {
    return run({binary_path("clientlib/mp_worker"), "--socket", broker_->worker_socket(), "--model",
                "m.bin"},
               who);
  }

  ScratchDir models_;
  std::unique_ptr<TestUsers> users_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(Access, SocketsRunDirAndSegmentCarryTheirModes) {
  struct stat st {};
  ASSERT_EQ(::stat(broker_->worker_socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660U);
  EXPECT_EQ(st.st_gid, users_->gid());
  ASSERT_EQ(::stat(broker_->admin_socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600U);
  EXPECT_EQ(st.st_uid, ::geteuid());
  ASSERT_EQ(::stat(broker_->run_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750U) << "the group can reach the worker socket, others cannot";
  EXPECT_EQ(st.st_gid, users_->gid());
  ASSERT_EQ(::stat(broker_->segment_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640U) << "workers map it read-only";
  EXPECT_EQ(st.st_gid, users_->gid());
}

TEST_F(Access, GroupMemberAcquiresAndMapsTheModel) {
  const Outcome o = worker_as(users_->member());
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  const json r = o.parsed();
  EXPECT_EQ(r["ok"], true) << o.out;
  EXPECT_EQ(r["size"], 2 << 20);
  EXPECT_EQ(r["checksum_ok"], true);
  // The broker logged the member by its credentials.
  const std::string log = read_file(models_.path() + "/broker.log");
  EXPECT_NE(
      log.find("uid " + std::to_string(users_->member().uid) + ") connected to the worker socket"),
      std::string::npos)
      << log;
}

TEST_F(Access, GroupMemberCannotUseAdminOps) {
  const Outcome admin = ctl({"--socket", broker_->admin_socket(), "stats"}, users_->member());
  EXPECT_EQ(admin.code, 1) << admin.err;
  EXPECT_NE(admin.err.find("Permission denied"), std::string::npos) << admin.err;
  const Outcome on_worker = ctl({"--socket", broker_->worker_socket(), "clear"}, users_->member());
  EXPECT_EQ(on_worker.code, 1);
  EXPECT_EQ(on_worker.err, "error: forbidden: op \"clear\" is only allowed on the admin socket\n");
  // The owner can.
  EXPECT_EQ(ctl({"--socket", broker_->admin_socket(), "clear"}).code, 0);
}

TEST_F(Access, OthersCannotConnectAtAll) {
  const Outcome w = worker_as(users_->outsider());
  EXPECT_EQ(w.code, 1) << w.out << w.err;
  EXPECT_EQ(w.parsed()["code"], "unavailable") << w.out;
  EXPECT_NE(w.out.find("Permission denied"), std::string::npos) << w.out;
  const Outcome c = ctl({"--run-dir", broker_->run_dir(), "--pool", broker_->pool(), "health"},
                        users_->outsider());
  EXPECT_EQ(c.code, 1) << "a broker runs: this is not exit 3\n" << c.err;
  EXPECT_NE(c.err.find("Permission denied"), std::string::npos) << c.err;
  EXPECT_EQ(
      broker_->admin("stats")["hits"].get<int>() + broker_->admin("stats")["misses"].get<int>(), 0);
}

TEST(AccessGroup, ExistingRunDirIsLeftAloneWithAWarning) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a test group";
  TestUsers users;
  ScratchDir models, scratch;
  Broker b(models.path(), {"--group", users.group()});
  std::filesystem::create_directories(b.run_dir());
  std::filesystem::permissions(b.run_dir(), std::filesystem::perms::owner_all);
  b.capture_stderr(scratch.path() + "/stderr");
  b.start();
  struct stat st {};
  ASSERT_EQ(::stat(b.run_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700U) << "a directory the broker did not create keeps its mode";
  EXPECT_NE(b.stderr_text().find("members of group " + users.group() +
                                 " cannot enter the run directory " + b.run_dir()),
            std::string::npos)
      << b.stderr_text();
}

TEST(AccessGroup, UnknownGroupIsOneSentence) {
  ScratchDir models;
  Broker b(models.path(), {"--group", "no-such-group-for-modelpool"});
  const Outcome o = run(b.argv());
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "modelpoold: --group: no group named \"no-such-group-for-modelpool\"\n");
}

}  // namespace
}  // namespace modelpool::testing
