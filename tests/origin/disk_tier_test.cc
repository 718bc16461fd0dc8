// File: tests/origin/disk_tier_test.cc
//
// DiskTier on real files in a scratch directory: commit and find, reopen
// (the LRU order is kept in mtimes), crash leftovers, writers that never
// commit, the budget and eviction, a full filesystem (a small tmpfs, as
// root), hostile directories and content deduplication. No sleeps: the
// tier's timestamps are strictly increasing by construction.
#include "broker/origin/disk_tier.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "broker_fixture.hpp"

namespace modelpool::broker {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string bytes_of(std::size_t size, char seed) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>(seed + i * 7 + i / 251);
  return s;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(out.size()))) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

std::unique_ptr<DiskTier> open_tier(const std::string& dir, std::uint64_t budget) {
  auto tier = DiskTier::open({dir, budget});
  EXPECT_TRUE(tier.ok()) << tier.status().to_string();
  return tier.ok() ? std::move(tier).value() : nullptr;
}

// Writes `bytes` as the blob for `key` and commits it; returns its sha256.
std::string put(DiskTier& tier, const std::string& key, const std::string& bytes) {
  auto w = tier.begin(key, bytes.size());
  EXPECT_TRUE(w.ok()) << w.status().to_string();
  if (!w.ok()) return "";
  EXPECT_EQ(::pwrite(w->fd(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  const std::string sha = sha256_hex(bytes);
  const Status s = w->commit(sha);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return sha;
}

bool found(DiskTier& tier, const std::string& key) {
  auto hit = tier.find(key);
  if (hit) ::close(hit->fd);
  return hit.has_value();
}

class DiskTierTest : public ::testing::Test {
 protected:
  ScratchDir scratch_;
  const std::string dir_ = scratch_.path() + "/tier";
};

TEST_F(DiskTierTest, CommitThenFindReturnsTheSameBytes) {
  auto tier = open_tier(dir_, 1 << 20);
  ASSERT_TRUE(tier);
  EXPECT_FALSE(tier->find("https://example.com/m.gguf"));
  const std::string bytes = bytes_of(10000, 3);
  const std::string sha = put(*tier, "https://example.com/m.gguf", bytes);

  auto hit = tier->find("https://example.com/m.gguf");
  ASSERT_TRUE(hit);
  EXPECT_EQ(read_all(hit->fd), bytes);
  EXPECT_EQ(hit->sha256, sha);
  EXPECT_EQ(hit->size, bytes.size());
  EXPECT_EQ(hit->path, dir_ + "/blobs/" + sha);
  EXPECT_EQ(::fcntl(hit->fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_NE(::fcntl(hit->fd, F_GETFD) & FD_CLOEXEC, 0);
  ::close(hit->fd);

  auto by_sha = tier->find_sha256(sha);
  ASSERT_TRUE(by_sha);
  EXPECT_EQ(read_all(by_sha->fd), bytes);
  ::close(by_sha->fd);
  EXPECT_FALSE(tier->find_sha256(std::string(64, '0')));
  EXPECT_FALSE(tier->find_sha256("../keys"));

  const DiskTierStats st = tier->stats();
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.writes, 1u);
  EXPECT_EQ(st.entries, 1u);
  EXPECT_EQ(st.bytes, bytes.size());
  EXPECT_EQ(st.budget, 1u << 20);
  EXPECT_EQ(st.write_errors, 0u);
}

TEST_F(DiskTierTest, SurvivesReopenAndKeepsTheLruOrder) {
  auto tier = open_tier(dir_, 3000);
  ASSERT_TRUE(tier);
  put(*tier, "a", bytes_of(1000, 1));
  put(*tier, "b", bytes_of(1000, 2));
  put(*tier, "c", bytes_of(1000, 3));
  EXPECT_TRUE(found(*tier, "a"));  // now b is the least recently used
  tier.reset();

  tier = open_tier(dir_, 3000);
  ASSERT_TRUE(tier);
  EXPECT_EQ(tier->stats().entries, 3u);
  EXPECT_EQ(tier->stats().bytes, 3000u);
  auto w = tier->begin("d", 1000);  // evicts one: b
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  w->abort();
  EXPECT_EQ(tier->stats().evictions, 1u);
  EXPECT_FALSE(found(*tier, "b"));
  EXPECT_TRUE(found(*tier, "a"));
  EXPECT_TRUE(found(*tier, "c"));
}

TEST_F(DiskTierTest, CrashLeftoversAreRemovedAtOpenAndNeverFound) {
  const std::string bytes = bytes_of(5000, 9);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // begins and writes a blob, then dies before commit
    auto tier = DiskTier::open({dir_, 1 << 20});
    if (!tier.ok()) ::_exit(1);
    auto w = (*tier)->begin("k", bytes.size());
    if (!w.ok()) ::_exit(2);
    if (::pwrite(w->fd(), bytes.data(), bytes.size(), 0) != 5000) ::_exit(3);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_EQ(names_in(dir_ + "/blobs").size(), 1u);
  scratch_.write("tier/keys/0123456789abcdef0123456789abcdef.incomplete", "half a key");

  auto tier = open_tier(dir_, 1 << 20);
  ASSERT_TRUE(tier);
  EXPECT_TRUE(names_in(dir_ + "/blobs").empty());
  EXPECT_TRUE(names_in(dir_ + "/keys").empty());
  EXPECT_FALSE(found(*tier, "k"));
  EXPECT_FALSE(tier->find_sha256(sha256_hex(bytes)));
  EXPECT_EQ(tier->stats().entries, 0u);
}

TEST_F(DiskTierTest, WriterDestroyedWithoutCommitOrAbortedLeavesNothing) {
  auto tier = open_tier(dir_, 4096);
  ASSERT_TRUE(tier);
  {
    auto w = tier->begin("dropped", 4096);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    ASSERT_EQ(names_in(dir_ + "/blobs").size(), 1u);
    DiskTier::Writer moved = std::move(w).value();  // the moved-from one owns nothing
    EXPECT_EQ(moved.size(), 4096u);
  }
  EXPECT_TRUE(names_in(dir_ + "/blobs").empty());
  auto w = tier->begin("aborted", 4096);  // the whole budget: the first gave it back
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  w->abort();
  EXPECT_TRUE(names_in(dir_ + "/blobs").empty());
  EXPECT_FALSE(w->commit(std::string(64, 'a')).ok());  // spent
  EXPECT_FALSE(found(*tier, "dropped"));
  EXPECT_FALSE(found(*tier, "aborted"));
  EXPECT_EQ(tier->stats().writes, 0u);
  EXPECT_TRUE(tier->begin("again", 4096).ok());
}

TEST_F(DiskTierTest, BeginEvictsLeastRecentlyUsedBlobsToMakeRoom) {
  auto tier = open_tier(dir_, 3000);
  ASSERT_TRUE(tier);
  put(*tier, "a", bytes_of(1000, 1));
  put(*tier, "b", bytes_of(1000, 2));
  put(*tier, "c", bytes_of(1000, 3));
  EXPECT_TRUE(found(*tier, "a"));      // LRU order now: b, c, a
  put(*tier, "d", bytes_of(1500, 4));  // needs b and c gone

  DiskTierStats st = tier->stats();
  EXPECT_EQ(st.evictions, 2u);
  EXPECT_EQ(st.evicted_bytes, 2000u);
  EXPECT_EQ(st.bytes, 2500u);
  EXPECT_EQ(st.entries, 2u);
  EXPECT_TRUE(found(*tier, "a"));
  EXPECT_TRUE(found(*tier, "d"));
  EXPECT_FALSE(found(*tier, "b"));
  EXPECT_FALSE(found(*tier, "c"));
  EXPECT_EQ(names_in(dir_ + "/blobs").size(), 2u);
  EXPECT_EQ(names_in(dir_ + "/keys").size(), 2u);  // the evicted blobs' keys went with them

  auto big = tier->begin("e", 3001);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), ErrorCode::kTooLarge);
  EXPECT_EQ(tier->stats().write_errors, 1u);
  EXPECT_EQ(tier->stats().entries, 2u);  // refused before evicting anything
}

TEST_F(DiskTierTest, InFlightWritersCountAgainstTheBudget) {
  auto tier = open_tier(dir_, 3000);
  ASSERT_TRUE(tier);
  auto w1 = tier->begin("one", 2000);
  ASSERT_TRUE(w1.ok());
  auto w2 = tier->begin("two", 2000);
  ASSERT_FALSE(w2.ok());
  EXPECT_EQ(w2.status().code(), ErrorCode::kPoolFull);
  w1->abort();
  EXPECT_TRUE(tier->begin("two", 2000).ok());
}

TEST_F(DiskTierTest, ConcurrentWritersAndReadersStayWithinTheBudget) {
  auto tier = open_tier(dir_, 20000);
  ASSERT_TRUE(tier);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i % 7);
        const std::string bytes = bytes_of(1000 + 100 * t, static_cast<char>(i));
        auto w = tier->begin(key, bytes.size());
        if (!w.ok()) continue;  // the others' reservations may hold the room
        if (::pwrite(w->fd(), bytes.data(), bytes.size(), 0) !=
                static_cast<ssize_t>(bytes.size()) ||
            !w->commit(sha256_hex(bytes)).ok()) {
          ++bad;
        }
        if (auto hit = tier->find(key)) {
          if (read_all(hit->fd).size() != hit->size) ++bad;
          ::close(hit->fd);
        }
        if (tier->stats().bytes > 20000) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(tier->stats().bytes, 20000u);
  EXPECT_EQ(names_in(dir_ + "/blobs").size(), tier->stats().entries);  // no .incomplete left
}

// A plain tmpfs of `bytes`, set up and taken down by scripts/hugepages.sh,
// the one place that knows how (tests/support's ScratchMount, which is not
// linked into this test binary, runs the same commands).
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& root, std::uint64_t bytes, std::string* why)
      : dir_(root + "/mnt"), state_(root + "/state") {
    auto [status, out] = script({"up", "--kind", "tmpfs", "--huge", "never", "--size",
                                 std::to_string(bytes), "--dir", dir_});
    mounted_ = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!mounted_) *why = out;
  }
  ~SmallTmpfs() {
    if (mounted_) script({"down", "--dir", dir_, "--force"});
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return dir_; }

 private:
  std::pair<int, std::string> script(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/env", "MODELPOOL_HUGEPAGES_STATE_DIR=" + state_,
                               "/bin/bash", MODELPOOL_SOURCE_DIR "/scripts/hugepages.sh"});
    return testing::run_command(args);
  }
  std::string dir_, state_;
  bool mounted_ = false;
};

TEST_F(DiskTierTest, FullFilesystemIsPoolFullAndLeavesNoFile) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  std::string why;
  SmallTmpfs mnt(scratch_.path(), 4 << 20, &why);
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount a 4 MiB tmpfs: " << why;
  const std::string dir = mnt.path() + "/tier";
  auto tier = open_tier(dir, 64 << 20);
  ASSERT_TRUE(tier);

  auto w = tier->begin("huge", 8 << 20);  // under the budget, over the free space
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), ErrorCode::kPoolFull);
  EXPECT_NE(w.status().message().find("disk tier full: " + dir), std::string::npos)
      << w.status().message();
  EXPECT_TRUE(names_in(dir + "/blobs").empty());
  EXPECT_EQ(tier->stats().write_errors, 1u);
  put(*tier, "small", bytes_of(1 << 20, 5));  // the failed reservation was given back
  EXPECT_TRUE(found(*tier, "small"));
  tier.reset();
}

TEST_F(DiskTierTest, HostileDirectoriesAreForbidden) {
  ASSERT_EQ(::mkdir((scratch_.path() + "/real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((scratch_.path() + "/real").c_str(), dir_.c_str()), 0);
  auto tier = DiskTier::open({dir_, 1 << 20});
  ASSERT_FALSE(tier.ok());
  EXPECT_EQ(tier.status().code(), ErrorCode::kForbidden);
  EXPECT_TRUE(names_in(scratch_.path() + "/real").empty());  // nothing created through it

  for (mode_t mode : {0770, 0703, 0777}) {
    const std::string dir = scratch_.path() + "/mode" + std::to_string(mode);
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
    ASSERT_EQ(::chmod(dir.c_str(), mode), 0);
    auto t = DiskTier::open({dir, 1 << 20});
    ASSERT_FALSE(t.ok()) << std::oct << mode;
    EXPECT_EQ(t.status().code(), ErrorCode::kForbidden) << t.status().to_string();
  }

  const std::string planted = scratch_.path() + "/planted";  // blobs/ is a symlink
  ASSERT_EQ(::mkdir(planted.c_str(), 0700), 0);
  ASSERT_EQ(::symlink((scratch_.path() + "/real").c_str(), (planted + "/blobs").c_str()), 0);
  EXPECT_EQ(DiskTier::open({planted, 1 << 20}).status().code(), ErrorCode::kForbidden);

  if (::geteuid() == 0) {  // owned by someone else
    const std::string other = scratch_.path() + "/other";
    ASSERT_EQ(::mkdir(other.c_str(), 0700), 0);
    ASSERT_EQ(::chown(other.c_str(), 65534, 65534), 0);
    EXPECT_EQ(DiskTier::open({other, 1 << 20}).status().code(), ErrorCode::kForbidden);
  }
}

TEST_F(DiskTierTest, ASecondTierOnTheSameDirectoryIsRefused) {
  auto tier = open_tier(dir_, 1 << 20);
  ASSERT_TRUE(tier);
  auto second = DiskTier::open({dir_, 1 << 20});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kUnavailable);
  tier.reset();
  EXPECT_TRUE(DiskTier::open({dir_, 1 << 20}).ok());
}

TEST_F(DiskTierTest, SameContentUnderTwoKeysIsOneBlob) {
  auto tier = open_tier(dir_, 1 << 20);
  ASSERT_TRUE(tier);
  const std::string bytes = bytes_of(3000, 7);
  const std::string sha = put(*tier, "https://a.example/x", bytes);
  EXPECT_EQ(put(*tier, "s3://bucket/x", bytes), sha);
  EXPECT_EQ(names_in(dir_ + "/blobs"), std::vector<std::string>{sha});
  EXPECT_EQ(names_in(dir_ + "/keys").size(), 2u);
  EXPECT_EQ(tier->stats().entries, 1u);
  EXPECT_EQ(tier->stats().bytes, 3000u);
  for (const char* key : {"https://a.example/x", "s3://bucket/x"}) {
    auto hit = tier->find(key);
    ASSERT_TRUE(hit) << key;
    EXPECT_EQ(hit->sha256, sha);
    ::close(hit->fd);
  }
}

TEST_F(DiskTierTest, ForeignAndCorruptNamesAreIgnoredOrDropped) {
  { ASSERT_TRUE(open_tier(dir_, 1 << 20)); }
  const std::string outside = scratch_.write("outside", "not a blob");
  const std::string fake_sha = sha256_hex("not a blob");
  ASSERT_EQ(::symlink(outside.c_str(), (dir_ + "/blobs/" + fake_sha).c_str()), 0);
  scratch_.write("tier/blobs/README", "mine");
  scratch_.write("tier/keys/" + std::string(64, 'e'), fake_sha + "\nkey whose name does not match");

  auto tier = open_tier(dir_, 1 << 20);
  ASSERT_TRUE(tier);
  EXPECT_FALSE(tier->find_sha256(fake_sha));  // the symlink is not followed
  EXPECT_EQ(tier->stats().entries, 0u);
  EXPECT_TRUE(fs::is_symlink(dir_ + "/blobs/" + fake_sha));
  EXPECT_TRUE(fs::exists(dir_ + "/blobs/README"));
  EXPECT_TRUE(names_in(dir_ + "/keys").empty());  // the corrupt key file was removed
}

}  // namespace
}  // namespace modelpool::broker
