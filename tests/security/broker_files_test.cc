// File: tests/security/broker_files_test.cc
//
// modelpoold never adopts, opens or uses a segment, run directory, lock
// file or socket path that another user owns or that others may write: it
// refuses with one line naming the path, its owner and its mode, exits
// non-zero, and leaves the other user's file as it was.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "security_support.hpp"

namespace modelpool::testing {
namespace {

namespace fs = std::filesystem;

std::string uid_text(Identity who) { return "uid " + std::to_string(who.uid) + ")"; }

class Ownership : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a throwaway user and switch to it";
    users_ = std::make_unique<TestUsers>();
    models_.write_random("m.bin", 1 << 20, 3);
  }
  void TearDown() override { users_.reset(); }
  Identity other() const { return users_->member(); }

  ScratchDir models_, scratch_;
  std::unique_ptr<TestUsers> users_;
};

TEST_F(Ownership, SquattersSegmentIsRefusedAndLeftAlone) {
  Broker b(models_.path());
  const std::string seg = b.segment_path();
  ASSERT_TRUE(as_user(other(), [&] {
    const int fd = ::open(seg.c_str(), O_RDWR | O_CREAT | O_EXCL, 0666);
    return fd >= 0 && ::fchmod(fd, 0666) == 0 && ::close(fd) == 0;
  }));
  const Outcome o = run(bounded(b.argv()));
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_NE(o.err.find("refusing segment " + seg), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(uid_text(other())), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("mode 0666"), std::string::npos) << o.err;
  struct stat st {};
  ASSERT_EQ(::lstat(seg.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, other().uid);
  EXPECT_EQ(st.st_size, 0) << "the broker initialized someone else's file";
  ::unlink(seg.c_str());
}

TEST_F(Ownership, LockSymlinkInAUsersRunDirIsNotFollowed) {
  Broker b(models_.path());
  const std::string precious = scratch_.write("precious", "root's bytes");
  fs::create_directories(b.run_dir());
  ASSERT_EQ(::chown(b.run_dir().c_str(), other().uid, other().gid), 0);
  const std::string lock = b.run_dir() + "/" + b.pool() + ".lock";
  ASSERT_TRUE(as_user(other(), [&] { return ::symlink(precious.c_str(), lock.c_str()) == 0; }));
  const Outcome o = run(bounded(b.argv()));
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_NE(o.err.find("refusing run directory " + b.run_dir()), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(uid_text(other())), std::string::npos) << o.err;
  EXPECT_EQ(read_file(precious), "root's bytes") << "the symlink's target was truncated";
  EXPECT_FALSE(fs::exists(b.segment_path()));
}

TEST_F(Ownership, PreexistingFallbackRunDirOfAnotherUserIsRefused) {
  // The broker runs as the throwaway user, whose fallback run directory
  // (no --run-dir, no XDG_RUNTIME_DIR) is /tmp/modelpool-UID.
  const std::string dir = "/tmp/modelpool-" + std::to_string(other().uid);
  fs::remove_all(dir);
  Broker b(models_.path());
  std::vector<std::string> argv = {binary_path("broker/modelpoold"),
                                   "--models",
                                   models_.path(),
                                   "--name",
                                   b.pool(),
                                   "--memory",
                                   "64MiB"};
  // First: created private by the broker, owned by its user.
  ::unsetenv("XDG_RUNTIME_DIR");
  ::unsetenv("MODELPOOL_RUN_DIR");
  {
    Child broker(setpriv_argv(other(), argv));
    auto line = broker.read_line();
    ASSERT_TRUE(line && line->find("ready") != std::string::npos);
    struct stat st {};
    ASSERT_EQ(::lstat(dir.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_uid, other().uid);
    EXPECT_EQ(st.st_mode & 022, 0U) << std::oct << (st.st_mode & 07777);
    broker.kill(SIGTERM);
    EXPECT_EQ(exit_code(broker.wait()), 0);
  }
  ::unlink(b.segment_path().c_str());
  // Then: the same path made by someone else first is refused.
  fs::remove_all(dir);
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chown(dir.c_str(), users_->outsider().uid, users_->outsider().gid), 0);
  const Outcome o = run(bounded(argv), other());
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_NE(o.err.find("refusing run directory " + dir), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(uid_text(users_->outsider())), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("mode 0755"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(b.segment_path()));
  fs::remove_all(dir);
}

TEST_F(Ownership, SocketPlantedByAnotherUserIsNotReplaced) {
  Broker b(models_.path());
  // A /tmp-like run directory: root's, sticky, writable by all.
  fs::create_directories(b.run_dir());
  ASSERT_EQ(::chmod(b.run_dir().c_str(), 01777), 0);
  const std::string sock = b.worker_socket();
  ASSERT_TRUE(as_user(other(), [&] {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    return ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }));
  const Outcome o = run(bounded(b.argv()));
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_NE(o.err.find("refusing socket path " + sock), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(uid_text(other())), std::string::npos) << o.err;
  struct stat st {};
  ASSERT_EQ(::lstat(sock.c_str(), &st), 0) << "the planted socket was removed";
  EXPECT_EQ(st.st_uid, other().uid) << "the planted socket was replaced";
  EXPECT_FALSE(fs::exists(b.segment_path())) << "a failed start left its segment";
  EXPECT_FALSE(fs::exists(b.run_dir() + "/" + b.pool() + ".lock"));
}

// These need no other user.

TEST(RunDir, LockSymlinkIsNeverFollowed) {
  ScratchDir models, scratch;
  Broker b(models.path());
  const std::string precious = scratch.write("precious", "bytes to keep");
  fs::create_directories(b.run_dir());
  const std::string lock = b.run_dir() + "/" + b.pool() + ".lock";
  ASSERT_EQ(::symlink(precious.c_str(), lock.c_str()), 0);
  const Outcome o = run(bounded(b.argv()));
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_NE(o.err.find("refusing lock file " + lock), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("symbolic link"), std::string::npos) << o.err;
  EXPECT_EQ(read_file(precious), "bytes to keep") << "the symlink's target was truncated";
}

TEST(RunDir, WritableByOthersIsRefused) {
  ScratchDir models;
  Broker b(models.path());
  fs::create_directories(b.run_dir());
  ASSERT_EQ(::chmod(b.run_dir().c_str(), 0777), 0);
  const Outcome o = run(bounded(b.argv()));
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_NE(o.err.find("refusing run directory " + b.run_dir()), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("mode 0777"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("group or others may write it"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(b.segment_path()));
}

}  // namespace
}  // namespace modelpool::testing
