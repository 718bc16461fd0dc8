// File: broker/origin/disk_tier.cc
//
// DiskTier (see disk_tier.hpp). Every name below the tier's directory is
// reached with *at() calls relative to directory fds opened once with
// O_NOFOLLOW, and files are opened with O_NOFOLLOW, so nothing planted in
// blobs/ or keys/ is followed.
#include "broker/origin/disk_tier.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iterator>
#include <string_view>
#include <tuple>

#include "broker/store/errno_text.hpp"
#include "broker/store/verify.hpp"

namespace modelpool::broker {
namespace {

constexpr std::string_view kIncomplete = ".incomplete";
constexpr std::size_t kMaxKeyBytes = 8192;

bool is_incomplete(std::string_view name) {
  return name.size() > kIncomplete.size() && name.ends_with(kIncomplete);
}

// The name of key `key`'s file in keys/: its SHA-256, so any key is a safe name.
std::string key_file(const std::string& key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ::EVP_Digest(key.data(), key.size(), md, &len, ::EVP_sha256(), nullptr);
  return hex_of(md, len);
}

// A fresh "<32 hex>.incomplete" name (O_EXCL catches the unlikely repeat).
std::string incomplete_name() {
  unsigned char buf[16] = {};
  if (::getrandom(buf, sizeof buf, 0) != sizeof buf) {  // a clock-based name then
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    std::memcpy(buf, &ts, std::min(sizeof ts, sizeof buf));
  }
  return hex_of(buf, sizeof buf) + std::string(kIncomplete);
}

std::int64_t ns_of(const timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Status system_error(const std::string& what, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return error(ErrorCode::kPoolFull, "disk tier full: " + what + ": " + errno_text(err));
  }
  return error(ErrorCode::kInternal, what + ": " + errno_text(err));
}

// kForbidden unless the directory open at `fd` is ours and only ours to write.
Status check_trusted(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return system_error("cannot stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) {
    return error(ErrorCode::kForbidden, "disk tier directory " + path + " is not a directory");
  }
  if (st.st_uid != ::geteuid()) {
    return error(ErrorCode::kForbidden, "disk tier directory " + path + " is owned by uid " +
                                            std::to_string(st.st_uid) + ", not this user (" +
                                            std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return error(ErrorCode::kForbidden, "disk tier directory " + path +
                                            " is group- or world-writable (mode " + mode +
                                            "); chmod 700 it");
  }
  return {};
}

// Opens (creating it when missing) directory `name` in `parent`, checked as trusted.
Result<int> open_dir(int parent, const std::string& name, const std::string& path) {
  if (::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) {
    return system_error("cannot create " + path, errno);
  }
  const int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ELOOP || e == ENOTDIR) {
      return error(ErrorCode::kForbidden,
                   "disk tier directory " + path + " is a symlink or not a directory");
    }
    return system_error("cannot open " + path, e);
  }
  if (auto s = check_trusted(fd, path); !s.ok()) {
    ::close(fd);
    return s;
  }
  return fd;
}

// The names in the directory open at `dirfd`, without "." and "..".
std::vector<std::string> list_dir(int dirfd) {
  std::vector<std::string> names;
  const int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
  if (d == nullptr) {
    if (fd >= 0) ::close(fd);
    return names;
  }
  while (const dirent* e = ::readdir(d)) {  // NOLINT(concurrency-mt-unsafe): our own DIR
    const std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

}  // namespace

Result<std::unique_ptr<DiskTier>> DiskTier::open(Options options) {
  const std::string& dir = options.dir;
  if (dir.empty()) return error(ErrorCode::kBadRequest, "disk tier directory is empty");
  if (options.budget == 0) {
    return error(ErrorCode::kBadRequest, "disk tier " + dir + ": budget must be > 0");
  }
  std::unique_ptr<DiskTier> tier(new DiskTier(dir, options.budget));  // closes fds on errors
  auto top = open_dir(AT_FDCWD, dir, dir);
  if (!top.ok()) return top.status();
  tier->dirfd_ = *top;
  if (::flock(tier->dirfd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    if (e != EWOULDBLOCK) return system_error("cannot lock " + dir, e);
    return error(ErrorCode::kUnavailable,
                 "disk tier directory " + dir + " is in use by another disk tier");
  }
  auto blobs = open_dir(tier->dirfd_, "blobs", dir + "/blobs");
  if (!blobs.ok()) return blobs.status();
  tier->blobs_fd_ = *blobs;
  auto keys = open_dir(tier->dirfd_, "keys", dir + "/keys");
  if (!keys.ok()) return keys.status();
  tier->keys_fd_ = *keys;
  std::lock_guard lock(tier->mu_);
  tier->scan_blobs();
  tier->scan_keys();
  while (tier->stats_.bytes > tier->budget_ && !tier->lru_.empty()) {
    tier->remove_blob(tier->lru_.front(), "to fit the budget at open", true);
  }
  spdlog::info("disk tier {}: {} blobs, {} bytes of {} budget, {} keys", dir, tier->stats_.entries,
               tier->stats_.bytes, tier->budget_, tier->keys_.size());
  return tier;
}

DiskTier::~DiskTier() {
  for (int fd : {keys_fd_, blobs_fd_, dirfd_}) {  // dirfd_ last: releases the flock
    if (fd >= 0) ::close(fd);
  }
}

void DiskTier::remove_incomplete(int dirfd, const std::string& name, const char* sub) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode)) return;
  if (::unlinkat(dirfd, name.c_str(), 0) == 0) {
    spdlog::warn("disk tier {}: removed {}/{}, left by a crash", dir_, sub, name);
  }
}

void DiskTier::scan_blobs() {
  std::vector<std::tuple<std::int64_t, std::string, std::uint64_t>> found;  // mtime, sha, size
  for (const std::string& name : list_dir(blobs_fd_)) {
    if (is_incomplete(name)) {
      remove_incomplete(blobs_fd_, name, "blobs");
      continue;
    }
    struct stat st {};
    if (!is_sha256_hex(name) || ::fstatat(blobs_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode)) {
      continue;
    }
    found.emplace_back(ns_of(st.st_mtim), name, static_cast<std::uint64_t>(st.st_size));
  }
  std::sort(found.begin(), found.end());  // least recently used first
  for (const auto& [mtime, sha, size] : found) {
    add_blob(sha, size);
    last_stamp_ns_ = std::max(last_stamp_ns_, mtime);
  }
}

void DiskTier::scan_keys() {
  for (const std::string& name : list_dir(keys_fd_)) {
    if (is_incomplete(name)) {
      remove_incomplete(keys_fd_, name, "keys");
      continue;
    }
    if (!is_sha256_hex(name)) continue;
    const int fd = ::openat(keys_fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    std::string text(regular ? 65 + kMaxKeyBytes + 1 : 0, '\0');  // +1: sees a longer file
    const ssize_t n = regular ? ::pread(fd, text.data(), text.size(), 0) : 0;
    ::close(fd);
    if (!regular) continue;  // not a file the tier writes
    text.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    const std::string sha = text.substr(0, 64);
    const std::string key = text.size() > 65 ? text.substr(65) : std::string();
    if (text.size() <= 65 || text.size() > 65 + kMaxKeyBytes || text[64] != '\n' ||
        !is_sha256_hex(sha) || key_file(key) != name) {
      ::unlinkat(keys_fd_, name.c_str(), 0);
      spdlog::warn("disk tier {}: removed corrupt key file keys/{}", dir_, name);
    } else if (blobs_.count(sha) == 0) {
      ::unlinkat(keys_fd_, name.c_str(), 0);  // its blob's eviction was cut short
      spdlog::debug("disk tier {}: dropped key {} of missing blob {}", dir_, key, sha);
    } else {
      record_key(key, sha);
    }
  }
}

void DiskTier::add_blob(const std::string& sha, std::uint64_t size) {
  lru_.push_back(sha);
  blobs_[sha] = Blob{size, std::prev(lru_.end()), {}};
  stats_.bytes += size;
  ++stats_.entries;
}

void DiskTier::record_key(const std::string& key, const std::string& sha) {
  auto [it, inserted] = keys_.try_emplace(key, sha);
  if (!inserted) {
    if (it->second == sha) return;
    if (auto old = blobs_.find(it->second); old != blobs_.end()) std::erase(old->second.keys, key);
    it->second = sha;
  }
  blobs_.at(sha).keys.push_back(key);
}

void DiskTier::remove_blob(std::string sha, const char* why, bool eviction) {
  auto it = blobs_.find(sha);
  if (it == blobs_.end()) return;
  ::unlinkat(blobs_fd_, sha.c_str(), 0);
  for (const std::string& key : it->second.keys) {
    ::unlinkat(keys_fd_, key_file(key).c_str(), 0);
    keys_.erase(key);
  }
  const std::uint64_t size = it->second.size;
  const std::size_t nkeys = it->second.keys.size();
  lru_.erase(it->second.lru);
  blobs_.erase(it);
  stats_.bytes -= size;
  --stats_.entries;
  if (eviction) {
    ++stats_.evictions;
    stats_.evicted_bytes += size;
    spdlog::info("disk tier {}: evicted blob {} ({} bytes, {} keys) {}", dir_, sha, size, nkeys,
                 why);
  } else {
    spdlog::warn("disk tier {}: forgot blob {}: {}", dir_, sha, why);
  }
}

void DiskTier::touch(const std::string& sha) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  // Strictly increasing, so that uses within one clock tick keep their order.
  last_stamp_ns_ = std::max(ns_of(now), last_stamp_ns_ + 1);
  const timespec times[2] = {{0, UTIME_OMIT},
                             {static_cast<time_t>(last_stamp_ns_ / 1000000000),
                              static_cast<long>(last_stamp_ns_ % 1000000000)}};
  ::utimensat(blobs_fd_, sha.c_str(), times, AT_SYMLINK_NOFOLLOW);
  lru_.splice(lru_.end(), lru_, blobs_.at(sha).lru);
}

std::optional<DiskTier::Hit> DiskTier::open_blob(const std::string& sha) {
  auto it = blobs_.find(sha);
  if (it == blobs_.end()) return std::nullopt;
  // O_NONBLOCK: a FIFO swapped in must not block us (cleared again below).
  const int fd = ::openat(blobs_fd_, sha.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::uint64_t>(st.st_size) != it->second.size) {
    if (fd >= 0) ::close(fd);
    remove_blob(sha, "it vanished or changed outside the tier", false);
    return std::nullopt;
  }
  ::fcntl(fd, F_SETFL, 0);
  touch(sha);
  return Hit{fd, sha, it->second.size, dir_ + "/blobs/" + sha};
}

std::optional<DiskTier::Hit> DiskTier::find(const std::string& key) {
  std::lock_guard lock(mu_);
  auto k = keys_.find(key);
  std::optional<Hit> hit = k == keys_.end() ? std::nullopt : open_blob(k->second);
  ++(hit ? stats_.hits : stats_.misses);
  return hit;
}

std::optional<DiskTier::Hit> DiskTier::find_sha256(const std::string& sha256) {
  if (!is_sha256_hex(sha256)) return std::nullopt;
  std::lock_guard lock(mu_);
  return open_blob(sha256);
}

Result<DiskTier::Writer> DiskTier::begin(const std::string& key, std::uint64_t size) {
  auto fail = [this](Status s) {
    std::lock_guard lock(mu_);
    ++stats_.write_errors;
    return s;
  };
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return fail(error(ErrorCode::kBadRequest, "disk tier key is empty or longer than " +
                                                  std::to_string(kMaxKeyBytes) + " bytes"));
  }
  if (size > budget_) {
    return fail(error(ErrorCode::kTooLarge, "blob of " + std::to_string(size) +
                                                " bytes exceeds the disk tier budget of " +
                                                std::to_string(budget_) + " in " + dir_));
  }
  {
    std::lock_guard lock(mu_);
    while (stats_.bytes + reserved_ + size > budget_ && !lru_.empty()) {
      remove_blob(lru_.front(), "to make room", true);
    }
    if (stats_.bytes + reserved_ + size > budget_) {  // the rest is held by writers
      ++stats_.write_errors;
      return error(ErrorCode::kPoolFull, "disk tier full: " + dir_ + ": " +
                                             std::to_string(reserved_) +
                                             " bytes held by writes in progress");
    }
    reserved_ += size;
  }
  std::string name = incomplete_name();
  const int fd =
      ::openat(blobs_fd_, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int rc = fd < 0 ? -1 : 0;
  if (rc == 0 && size > 0) {
    do {
      rc = ::fallocate(fd, 0, 0, static_cast<off_t>(size));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno == EOPNOTSUPP) rc = ::ftruncate(fd, static_cast<off_t>(size));
  }
  if (rc != 0) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    if (fd >= 0) ::unlinkat(blobs_fd_, name.c_str(), 0);
    unreserve(size);
    return fail(system_error(fd < 0 ? "cannot create a blob in " + dir_ + "/blobs" : dir_, e));
  }
  return Writer(this, fd, std::move(name), key, size);
}

void DiskTier::unreserve(std::uint64_t size) {
  std::lock_guard lock(mu_);
  reserved_ -= size;
}

Status DiskTier::commit(Writer& w, const std::string& sha) {
  auto fail = [&](Status s) {
    w.release();
    std::lock_guard lock(mu_);
    ++stats_.write_errors;
    return s;
  };
  if (!is_sha256_hex(sha)) {
    return fail(error(ErrorCode::kInternal, "disk tier commit: \"" + sha + "\" is not a sha256"));
  }
  struct stat st {};
  if (::fstat(w.fd_, &st) != 0) return fail(system_error("cannot stat a blob in " + dir_, errno));
  if (static_cast<std::uint64_t>(st.st_size) != w.size_) {
    return fail(error(ErrorCode::kInternal, "disk tier commit: blob " + sha + " holds " +
                                                std::to_string(st.st_size) + " bytes, not " +
                                                std::to_string(w.size_)));
  }
  if (::fsync(w.fd_) != 0) return fail(system_error("cannot sync blob " + sha, errno));
  int err = 0;
  {
    std::lock_guard lock(mu_);
    if (blobs_.count(sha) != 0) {
      ::unlinkat(blobs_fd_, w.tmp_name_.c_str(), 0);  // the same bytes are there already
    } else if (::renameat(blobs_fd_, w.tmp_name_.c_str(), blobs_fd_, sha.c_str()) == 0) {
      add_blob(sha, w.size_);
    } else {
      err = errno;
    }
    if (err == 0) {
      touch(sha);
      ++stats_.writes;
      reserved_ -= w.size_;  // now counted in stats_.bytes, or a duplicate
      ::close(std::exchange(w.fd_, -1));
      w.tier_ = nullptr;  // spent
    }
  }
  if (err != 0)
    return fail(system_error("cannot rename blob " + sha + " into place in " + dir_, err));
  if (::fsync(blobs_fd_) != 0) {
    spdlog::warn("disk tier {}: cannot sync blobs/: {}", dir_, errno_text(errno));
  }
  return record_durably(w.key_, sha);
}

Status DiskTier::record_durably(const std::string& key, const std::string& sha) {
  const std::string tmp = incomplete_name();
  const std::string what = dir_ + "/keys/" + tmp;
  const int fd =
      ::openat(keys_fd_, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  Status s = fd < 0 ? system_error("cannot create " + what, errno) : Status();
  const std::string text = sha + "\n" + key;
  errno = ENOSPC;  // what a short write to a regular file means
  if (s.ok() && ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    s = system_error("cannot write " + what, errno);
  }
  if (s.ok() && ::fsync(fd) != 0) s = system_error("cannot sync " + what, errno);
  if (fd >= 0) ::close(fd);
  std::lock_guard lock(mu_);
  // The blob may have been evicted meanwhile; then the key is not recorded.
  if (s.ok() && blobs_.count(sha) != 0) {
    if (::renameat(keys_fd_, tmp.c_str(), keys_fd_, key_file(key).c_str()) == 0) {
      record_key(key, sha);
      if (::fsync(keys_fd_) != 0) {
        spdlog::warn("disk tier {}: cannot sync keys/: {}", dir_, errno_text(errno));
      }
      return {};
    }
    s = system_error("cannot rename " + what + " into place", errno);
  }
  ::unlinkat(keys_fd_, tmp.c_str(), 0);
  if (!s.ok()) ++stats_.write_errors;
  return s;
}

DiskTierStats DiskTier::stats() const {
  std::lock_guard lock(mu_);
  DiskTierStats out = stats_;
  out.budget = budget_;
  return out;
}

DiskTier::Writer::Writer(Writer&& other) noexcept
    : tier_(std::exchange(other.tier_, nullptr)),
      fd_(std::exchange(other.fd_, -1)),
      tmp_name_(std::move(other.tmp_name_)),
      key_(std::move(other.key_)),
      size_(other.size_) {}

DiskTier::Writer& DiskTier::Writer::operator=(Writer&& other) noexcept {
  if (this != &other) {
    release();
    tier_ = std::exchange(other.tier_, nullptr);
    fd_ = std::exchange(other.fd_, -1);
    tmp_name_ = std::move(other.tmp_name_);
    key_ = std::move(other.key_);
    size_ = other.size_;
  }
  return *this;
}

void DiskTier::Writer::release() {
  if (tier_ == nullptr) return;
  ::close(std::exchange(fd_, -1));
  ::unlinkat(tier_->blobs_fd_, tmp_name_.c_str(), 0);
  tier_->unreserve(size_);
  tier_ = nullptr;
}

Status DiskTier::Writer::commit(const std::string& sha256) {
  if (tier_ == nullptr) {
    return error(ErrorCode::kInternal, "disk tier commit: the writer was committed or aborted");
  }
  return tier_->commit(*this, sha256);
}

}  // namespace modelpool::broker
