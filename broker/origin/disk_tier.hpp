// File: broker/origin/disk_tier.hpp
//
// The broker's disk tier: a content-addressed local cache of blobs downloaded
// from remote origins, so that the next broker on the host (or this one after
// a restart) is served from disk without asking the origin again.
//
// On disk, below the tier's directory:
//   blobs/<sha256>            a committed blob, named by its content's digest
//   blobs/<random>.incomplete a blob being written (removed at open: a crash)
//   keys/<sha256 of key>      "<blob sha256>\n<key>": which blob a key names
// A blob's mtime is its last use, so the LRU order survives restarts. Keys
// are removed together with the blob they name when it is evicted; a key
// whose blob is missing anyway (a crash between the two) is a miss and is
// dropped. Names the tier does not write are ignored: not followed, not
// deleted, not counted.
//
// The directory is trusted with other people's weights, so open() refuses it
// (kForbidden) when it is a symlink, is owned by another user or is group- or
// world-writable, as the broker's run dir. It holds an exclusive flock on the
// directory while open: a second tier on the same directory, in this process
// or another, gets kUnavailable instead of deleting the first one's writes.
//
// Thread safety: every DiskTier method may be called from any thread at once
// (one mutex; the fsync of a blob's bytes runs outside it). A Writer may be
// used on another thread than the one that began it, but by one thread at a
// time, except that its fd() may be written from several threads at once.
// The tier must outlive its Writers.
#ifndef MODELPOOL_BROKER_ORIGIN_DISK_TIER_HPP_
#define MODELPOOL_BROKER_ORIGIN_DISK_TIER_HPP_

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shm/status.hpp"

namespace modelpool::broker {

struct DiskTierStats {
  std::uint64_t bytes = 0;    // bytes of committed blobs
  std::uint64_t entries = 0;  // committed blobs
  std::uint64_t budget = 0;
  std::uint64_t hits = 0, misses = 0;  // find() outcomes since open
  std::uint64_t evictions = 0;         // blobs removed to make room
  std::uint64_t evicted_bytes = 0;
  std::uint64_t writes = 0;        // blobs committed
  std::uint64_t write_errors = 0;  // begin/commit failures (full disk, too large, ...)
};

class DiskTier {
 public:
  struct Options {
    std::string dir;
    std::uint64_t budget = 0;  // bytes, > 0
  };
  // Creates `dir` (mode 0700; its parent must exist) with blobs/ and keys/
  // when missing, removes the *.incomplete files a crash left, reads the
  // committed blobs and keys, and evicts least recently used blobs until
  // what is there fits `budget`. Errors: kForbidden (symlink, another
  // owner, group/world-writable), kUnavailable (another tier has it open),
  // kBadRequest (budget 0), kInternal (a system call failed).
  static Result<std::unique_ptr<DiskTier>> open(Options options);
  ~DiskTier();
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  struct Hit {
    int fd = -1;         // O_RDONLY|O_CLOEXEC, owned by the caller (close it)
    std::string sha256;  // 64 lowercase hex digits
    std::uint64_t size = 0;
    std::string path;  // the blob's path, for logs
  };
  // The blob recorded for `key` (opaque: the origin's object URL without
  // credentials), opened, or nullopt. Counts a hit or a miss; a hit becomes
  // the most recently used blob (persisted in its mtime). An fd stays valid
  // when the blob is evicted afterwards.
  std::optional<Hit> find(const std::string& key);
  // The blob with this content, or nullopt. Marks it used, counts nothing.
  std::optional<Hit> find_sha256(const std::string& sha256);

  // A blob being written. Move-only. Destroying it without commit() removes
  // its .incomplete file and gives its reservation back.
  class Writer {
   public:
    Writer(Writer&& other) noexcept;
    Writer& operator=(Writer&& other) noexcept;
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    ~Writer() { release(); }

    // O_RDWR, `size` bytes reserved; the caller pwrite()s the blob's bytes.
    int fd() const { return fd_; }
    std::uint64_t size() const { return size_; }
    // Makes the blob durable and findable: fsyncs it, renames it to
    // blobs/<sha256>, fsyncs blobs/, then records key -> sha256 the same way
    // (keys/<h>.incomplete, fsync, rename) and counts the write. The caller
    // has verified that `sha256` is the content's digest; the tier does not
    // re-read. When a blob with that digest exists already, the new file is
    // dropped and the key names the existing one. The Writer is spent
    // afterwards, whatever the outcome. Errors (counted in write_errors):
    // kInternal (not 64 lowercase hex, the file's size is not size(), spent
    // already, an I/O error), kPoolFull (the filesystem is full; when only
    // the key file did not fit, the blob stays committed, see find_sha256).
    Status commit(const std::string& sha256);
    // Removes the .incomplete now; the Writer is spent.
    void abort() { release(); }

   private:
    friend class DiskTier;
    Writer(DiskTier* tier, int fd, std::string tmp_name, std::string key, std::uint64_t size)
        : tier_(tier), fd_(fd), tmp_name_(std::move(tmp_name)), key_(std::move(key)), size_(size) {}
    void release();  // closes, unlinks the .incomplete, unreserves

    DiskTier* tier_ = nullptr;  // null when spent or moved from
    int fd_ = -1;
    std::string tmp_name_;  // in blobs/
    std::string key_;
    std::uint64_t size_ = 0;
  };
  // Starts a blob of `size` bytes for `key`: evicts least recently used
  // blobs until it fits next to the committed blobs and the other writers'
  // reservations, creates blobs/<random>.incomplete and reserves the bytes
  // with fallocate (ftruncate where the filesystem cannot). Errors (each
  // counted in write_errors): kBadRequest when `key` is empty or longer
  // than 8 KiB; kTooLarge when size > budget; kPoolFull when in-flight
  // writers hold the room, or ("disk tier full: <dir>: <errno text>") when
  // the filesystem has no room (the file is removed); kInternal for other
  // system errors.
  Result<Writer> begin(const std::string& key, std::uint64_t size);

  DiskTierStats stats() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Blob {
    std::uint64_t size = 0;
    std::list<std::string>::iterator lru;  // into lru_
    std::vector<std::string> keys;         // keys naming it
  };

  DiskTier(std::string dir, std::uint64_t budget) : dir_(std::move(dir)), budget_(budget) {}

  // Each REQUIRES(mu_).
  void scan_blobs();
  void scan_keys();
  void remove_incomplete(int dirfd, const std::string& name, const char* sub);
  void add_blob(const std::string& sha, std::uint64_t size);
  void record_key(const std::string& key, const std::string& sha);
  // Unlinks the blob and the keys naming it; counted as an eviction or not.
  void remove_blob(std::string sha, const char* why, bool eviction);
  // Makes the blob the most recently used, in memory and in its mtime.
  void touch(const std::string& sha);
  std::optional<Hit> open_blob(const std::string& sha);

  // Each EXCLUDES(mu_).
  Status commit(Writer& w, const std::string& sha);
  // Writes keys/<h>.incomplete, fsyncs it, renames it to keys/<h> and
  // records key -> sha, unless the blob was evicted meanwhile.
  Status record_durably(const std::string& key, const std::string& sha);
  void unreserve(std::uint64_t size);

  const std::string dir_;
  const std::uint64_t budget_;
  // Set by open(), then constant; closed by the destructor.
  int dirfd_ = -1;     // the tier's directory, flock'd
  int blobs_fd_ = -1;  // O_RDONLY|O_DIRECTORY, for *at() calls and fsync
  int keys_fd_ = -1;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Blob> blobs_;        // GUARDED_BY(mu_): by sha256
  std::list<std::string> lru_;                         // GUARDED_BY(mu_): front = least recent
  std::unordered_map<std::string, std::string> keys_;  // GUARDED_BY(mu_): key -> sha256
  std::uint64_t reserved_ = 0;                         // GUARDED_BY(mu_): by live Writers
  std::int64_t last_stamp_ns_ = 0;                     // GUARDED_BY(mu_): newest mtime given
  DiskTierStats stats_;                                // GUARDED_BY(mu_): bytes, entries, counters
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_ORIGIN_DISK_TIER_HPP_
