// File: tests/hugepages/default_tmpfs_test.cc
//
// The default install's huge pages (issue 22): a broker started as root with
// no --segment-dir puts its segment on a tmpfs of its own, mounted with
// huge=within_size at RUN_DIR/POOL.tmpfs (as /proc/self/mountinfo shows);
// a worker maps a model there on 2 MiB pages; a restart adopts the segment
// on the mount the first run left; a clean exit with --remove-on-exit
// unmounts it. Where the broker cannot mount (not root) or must not (a
// symlink planted at the path) the segment lands in /dev/shm, and the log
// says so in exactly one line; --huge-tmpfs no is /dev/shm without a word.
// Needs root, transparent huge pages for tmpfs and the host's mount
// namespace; skipped with the reason otherwise. Every mount a broker leaves
// is undone by the test (UnmountAtExit), also when it fails.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "broker_fixture.hpp"
#include "huge_env.hpp"

namespace modelpool::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kModelBytes = 16 * kMiB;

struct MountLine {
  std::string fstype, source, options;
};

// The mounts whose mount point is `dir` (no escaping: test paths have no
// spaces), oldest first.
std::vector<MountLine> mounts_at(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<MountLine> found;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    const auto sep = line.find(" - ");
    if (!(f >> id >> parent >> dev >> root >> point) || point != dir || sep == std::string::npos) {
      continue;
    }
    std::istringstream tail(line.substr(sep + 3));
    MountLine m;
    if (tail >> m.fstype >> m.source >> m.options) found.push_back(m);
  }
  return found;
}

bool huge_tmpfs(const MountLine& m) {
  const std::string o = "," + m.options + ",";
  return m.fstype == "tmpfs" && (o.find(",huge=within_size,") != std::string::npos ||
                                 o.find(",huge=always,") != std::string::npos);
}

std::string shmem_enabled() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string all;
  std::getline(in, all);
  return all;
}

// Why this host cannot run the root cases, or "".
std::string why_not_here() {
  if (::geteuid() != 0) return "needs root (the broker mounts its tmpfs as root)";
  const std::string thp = shmem_enabled();
  if (thp.empty()) return "this kernel has no transparent huge pages for tmpfs";
  if (thp.find("[deny]") != std::string::npos) return "huge pages on tmpfs are denied";
  struct stat mine {
  }, init{};  // pid 1's may be unreadable (no ptrace access): see sandboxed() too
  if (::stat("/proc/self/ns/mnt", &mine) == 0 && ::stat("/proc/1/ns/mnt", &init) == 0 &&
      mine.st_ino != init.st_ino) {
    return "not in the host's mount namespace (the broker falls back there)";
  }
  return "";
}

// Lines of `text` that contain `what`.
int count_lines(const std::string& text, const std::string& what) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(what) != std::string::npos;
  return n;
}

// Whatever is still mounted at `dir` when this is destroyed (a broker that
// kept its segment, died or failed the test) is emptied and unmounted, at
// most a few stacked mounts deep; then `dir` and `run_dir` are removed.
class UnmountAtExit {
 public:
  UnmountAtExit(std::string dir, std::string run_dir)
      : dir_(std::move(dir)), run_dir_(std::move(run_dir)) {}
  ~UnmountAtExit() {
    std::error_code ec;
    for (int i = 0; i < 8 && !mounts_at(dir_).empty(); ++i) {
      for (const auto& e : fs::directory_iterator(dir_, ec)) fs::remove(e.path(), ec);
      if (::umount2(dir_.c_str(), MNT_DETACH) != 0) break;
    }
    fs::remove_all(run_dir_, ec);
  }
  UnmountAtExit(const UnmountAtExit&) = delete;
  UnmountAtExit& operator=(const UnmountAtExit&) = delete;

 private:
  std::string dir_, run_dir_;
};

class DefaultTmpfs : public ::testing::Test {
 protected:
  void SetUp() override { model_path_ = models_.write_random("m.bin", kModelBytes, 22); }

  // A broker with the default --huge-tmpfs (the fixture passes no).
  Broker& start_default(std::vector<std::string> extra) {
    extra.insert(extra.begin(),
                 {"--huge-tmpfs", "auto", "--memory", "64MiB", "--log-level", "info"});
    broker_.emplace(models_.path(), extra);
    tmpfs_dir_ = broker_->run_dir() + "/" + broker_->pool() + ".tmpfs";
    guard_.emplace(tmpfs_dir_, broker_->run_dir());
    broker_->capture_stderr(models_.path() + "/broker.log");
    broker_->start();
    return *broker_;
  }

  // The broker found itself in a sandboxed mount namespace (a test run in
  // a service's or a container's), which the test could not tell.
  bool sandboxed() const {
    return broker_ &&
           broker_->stderr_text().find("mount namespace of its own") != std::string::npos;
  }

  json attach() {
    Child w({binary_path("tests/hugepages/mp_huge_worker"), "--socket", broker_->worker_socket(),
             "--model", "m.bin", "--verify", model_path_});
    auto line = w.read_line();
    EXPECT_EQ(w.wait(), 0);
    return line ? json::parse(*line) : json{{"ok", false}, {"code", "no_output"}};
  }

  void TearDown() override {
    if (broker_ && HasFailure()) std::cerr << "modelpoold log:\n" << broker_->stderr_text();
    broker_.reset();
    guard_.reset();
  }

  HugeTestLock lock_;
  ScratchDir models_;
  std::string model_path_, tmpfs_dir_;
  std::optional<UnmountAtExit> guard_;  // destroyed after the broker
  std::optional<Broker> broker_;
};

TEST_F(DefaultTmpfs, RootBrokerPutsTheSegmentOnItsOwnHugeTmpfsAndUnmountsIt) {
  if (const std::string why = why_not_here(); !why.empty()) GTEST_SKIP() << why;
  Broker& b = start_default({"--remove-on-exit"});
  if (sandboxed()) GTEST_SKIP() << b.stderr_text();
  const auto mounts = mounts_at(tmpfs_dir_);
  ASSERT_EQ(mounts.size(), 1U) << tmpfs_dir_;
  EXPECT_TRUE(huge_tmpfs(mounts[0])) << mounts[0].fstype << " " << mounts[0].options;
  EXPECT_EQ(mounts[0].source, "modelpoold");
  struct stat st {};
  ASSERT_EQ(::stat(tmpfs_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0U);
  EXPECT_EQ(st.st_mode & 022, 0U) << "the segment's directory is writable by others";

  const json stats = b.admin("stats");
  EXPECT_EQ(stats["segment_path"], tmpfs_dir_ + "/" + b.pool() + ".segment") << stats.dump();
  EXPECT_EQ(stats["page_size"], kHugePage) << stats.dump();
  EXPECT_EQ(count_lines(b.stderr_text(), "segment in /dev/shm"), 0) << b.stderr_text();

  const json r = attach();
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_TRUE(r["file_ok"].get<bool>());
  EXPECT_EQ(r["page_size"], kHugePage);
  EXPECT_TRUE(r["aligned"].get<bool>());
  EXPECT_EQ(r["after"]["pmd_mapped_kb"], kModelBytes / 1024) << r.dump();

  EXPECT_EQ(b.stop(SIGTERM), 0);
  EXPECT_TRUE(mounts_at(tmpfs_dir_).empty()) << "the emptied tmpfs is still mounted";
  EXPECT_FALSE(fs::exists(tmpfs_dir_));
}

TEST_F(DefaultTmpfs, ARestartAdoptsTheSegmentOnTheMountTheFirstRunLeft) {
  if (const std::string why = why_not_here(); !why.empty()) GTEST_SKIP() << why;
  Broker& b = start_default({});
  if (sandboxed()) GTEST_SKIP() << b.stderr_text();
  ASSERT_TRUE(b.admin("load", {{"model", "m.bin"}}).value("ok", false));
  EXPECT_EQ(b.stop(SIGTERM), 0);
  ASSERT_EQ(mounts_at(tmpfs_dir_).size(), 1U) << "a kept segment keeps its mount";

  b.start();
  EXPECT_EQ(mounts_at(tmpfs_dir_).size(), 1U) << "mounted again on top of the first";
  const json stats = b.admin("stats");
  EXPECT_EQ(stats["loads"], 0) << stats.dump();
  ASSERT_EQ(stats["models"].size(), 1U) << stats.dump();
  EXPECT_NE(b.stderr_text().find("adopted segment"), std::string::npos) << b.stderr_text();
  const json r = attach();
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_TRUE(r["file_ok"].get<bool>());
  EXPECT_EQ(b.admin("stats")["loads"], 0);
}

TEST_F(DefaultTmpfs, ASymlinkAtTheMountPathIsNeverMountedOver) {
  if (const std::string why = why_not_here(); !why.empty()) GTEST_SKIP() << why;
  ScratchDir target;
  // The run dir is sticky and world-writable, like /tmp, and someone
  // planted a symlink where the broker would mount.
  broker_.emplace(models_.path(),
                  std::vector<std::string>{"--huge-tmpfs", "auto", "--memory", "64MiB",
                                           "--log-level", "info", "--remove-on-exit"});
  const std::string run_dir = broker_->run_dir();
  tmpfs_dir_ = run_dir + "/" + broker_->pool() + ".tmpfs";
  guard_.emplace(tmpfs_dir_, run_dir);
  ASSERT_TRUE(fs::create_directory(run_dir));
  ASSERT_EQ(::chmod(run_dir.c_str(), 01777), 0);
  ASSERT_EQ(::symlink(target.path().c_str(), tmpfs_dir_.c_str()), 0);
  broker_->capture_stderr(models_.path() + "/broker.log");
  broker_->start();
  EXPECT_TRUE(mounts_at(target.path()).empty()) << "mounted through the symlink";
  EXPECT_TRUE(mounts_at(tmpfs_dir_).empty());
  const std::string log = broker_->stderr_text();
  EXPECT_EQ(count_lines(log, "segment in /dev/shm"), 1) << log;
  EXPECT_EQ(broker_->admin("stats")["segment_path"], "/dev/shm/" + broker_->pool());
}

TEST_F(DefaultTmpfs, HugeTmpfsNoIsDevShmWithoutAWord) {
  Broker b(models_.path(), {"--memory", "64MiB", "--log-level", "info", "--remove-on-exit"});
  b.capture_stderr(models_.path() + "/broker.log");
  b.start();
  EXPECT_EQ(b.admin("stats")["segment_path"], "/dev/shm/" + b.pool());
  EXPECT_EQ(count_lines(b.stderr_text(), "segment in /dev/shm"), 0) << b.stderr_text();
  EXPECT_FALSE(fs::exists(b.run_dir() + "/" + b.pool() + ".tmpfs"));
}

// What a broker run as uid 65534 (setpriv, no capabilities) did.
struct NonRootRun {
  bool started = false;
  int status = -1;
  std::string log, pool;
};

// Starts modelpoold as uid 65534 with a run dir of its own under `scratch`
// and `extra` options, waits for its ready line, stops it (SIGTERM).
NonRootRun run_as_nobody(const ScratchDir& models, const ScratchDir& scratch,
                         const std::vector<std::string>& extra) {
  const std::string run_dir = scratch.path() + "/run";
  NonRootRun r;
  r.pool = "mptest-nonroot-" + std::to_string(::getpid());
  const std::string log = scratch.path() + "/broker.log";
  std::vector<std::string> argv = {"/usr/bin/setpriv",
                                   "--reuid",
                                   "65534",
                                   "--regid",
                                   "65534",
                                   "--clear-groups",
                                   "--inh-caps=-all",
                                   "--",
                                   binary_path("broker/modelpoold"),
                                   "--models",
                                   models.path(),
                                   "--name",
                                   r.pool,
                                   "--run-dir",
                                   run_dir,
                                   "--memory",
                                   "64MiB",
                                   "--log-level",
                                   "info",
                                   "--remove-on-exit"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (::chmod(scratch.path().c_str(), 0711) != 0 || !fs::create_directory(run_dir) ||
      ::chown(run_dir.c_str(), 65534, 65534) != 0) {
    r.log = "cannot prepare " + run_dir;
    return r;
  }
  Child broker(argv, true, log);
  const auto ready = broker.read_line();
  r.started = ready && ready->find("ready") != std::string::npos;
  broker.kill(SIGTERM);
  r.status = broker.wait();
  r.log = read_file(log);
  return r;
}

std::string why_no_setpriv() {
  if (::geteuid() != 0) return "needs root to start the broker as another user";
  if (!fs::exists("/usr/bin/setpriv")) return "setpriv (util-linux) is not installed";
  return "";
}

// Not root: the mount is not attempted; /dev/shm, and one line saying why.
TEST_F(DefaultTmpfs, WithoutRootItFallsBackToDevShmAndSaysSoOnce) {
  if (const std::string why = why_no_setpriv(); !why.empty()) GTEST_SKIP() << why;
  ASSERT_EQ(::chmod(models_.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(model_path_.c_str(), 0644), 0);
  ScratchDir scratch;
  const NonRootRun r = run_as_nobody(models_, scratch, {});
  ASSERT_TRUE(r.started) << r.log;
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.log;
  EXPECT_EQ(count_lines(r.log, "segment in /dev/shm"), 1) << r.log;
  EXPECT_EQ(count_lines(r.log, "CAP_SYS_ADMIN"), 1) << r.log;
  EXPECT_NE(r.log.find("segment /dev/shm/" + r.pool + " "), std::string::npos) << r.log;
  EXPECT_FALSE(fs::exists(scratch.path() + "/run/" + r.pool + ".tmpfs"));
  EXPECT_FALSE(fs::exists("/dev/shm/" + r.pool)) << "--remove-on-exit left the segment";
}

// The systemd unit's way: root mounts a huge tmpfs for the service's user
// (run-modelpool.tmpfs.mount), the unprivileged broker is given it with
// --huge-tmpfs DIR and uses it; one root still owns is refused for /dev/shm.
TEST_F(DefaultTmpfs, AnUnprivilegedBrokerUsesTheHugeTmpfsMountedForIt) {
  if (const std::string why = why_no_setpriv(); !why.empty()) GTEST_SKIP() << why;
  std::string why;
  auto mount = mount_huge(HugeKind::kTmpfs, 128 * kMiB, 0, &why);
  if (!mount) GTEST_SKIP() << why;
  const std::string dir = mount->path();
  ASSERT_EQ(::chmod(fs::path(dir).parent_path().c_str(), 0711), 0);
  ASSERT_EQ(::chmod(models_.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(model_path_.c_str(), 0644), 0);
  {
    ScratchDir scratch;  // still root's: not used
    const NonRootRun r = run_as_nobody(models_, scratch, {"--huge-tmpfs", dir});
    ASSERT_TRUE(r.started) << r.log;
    EXPECT_EQ(count_lines(r.log, "segment in /dev/shm"), 1) << r.log;
    EXPECT_NE(r.log.find(dir + " belongs to uid 0"), std::string::npos) << r.log;
  }
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0750), 0);
  ScratchDir scratch;
  const NonRootRun r = run_as_nobody(models_, scratch, {"--huge-tmpfs", dir});
  ASSERT_TRUE(r.started) << r.log;
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.log;
  EXPECT_EQ(count_lines(r.log, "segment in /dev/shm"), 0) << r.log;
  EXPECT_NE(r.log.find("segment " + dir + "/" + r.pool + ".segment ("), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("2.0 MiB pages"), std::string::npos) << r.log;
  EXPECT_TRUE(fs::is_empty(dir)) << "--remove-on-exit left the segment";
  EXPECT_EQ(mounts_at(dir).size(), 1U) << "the broker unmounted a mount it did not make";
}

}  // namespace
}  // namespace modelpool::testing
