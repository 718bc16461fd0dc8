// File: clientlib/src/connection.hpp
//
// A worker's connection to the broker: the worker-socket channel (after a
// successful `hello`), the segment file opened read-only, and the Leases -
// handles this connection holds for live Models. Shared (shared_ptr) by the
// Client and every Model it produced, so a Model can release its handle after
// the Client is gone.
//
// Broker restarts: the broker drops a connection's handles when the
// connection ends. The next acquire() then reconnects, checks that the
// broker serves the same pool and segment, and re-acquires every live Lease;
// a Lease whose entry came back at a different generation or place (or whose
// segment was replaced) is orphaned: its mapping stays, unprotected.
//
// Thread-safe: acquires are serialized by `call_mu_` (one request in flight
// per connection); releases are sent without waiting for them or for a reply.
// Fork: the socket belongs to the process that connected. In a forked child
// acquire() fails and release() sends nothing (the handles are the parent's).
// Returns Status/Result, never throws.
#ifndef MODELPOOL_CLIENTLIB_SRC_CONNECTION_HPP_
#define MODELPOOL_CLIENTLIB_SRC_CONNECTION_HPP_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "clientlib/src/channel.hpp"
#include "clientlib/src/mapping.hpp"
#include "clientlib/src/unix_socket.hpp"
#include "shm/protocol/messages.hpp"
#include "shm/status.hpp"

namespace modelpool::detail {

class SegmentFile;

// One handle held by this connection for one Model.
struct Lease {
  explicit Lease(const proto::AcquireReply& r)
      : model(r.model),
        generation(r.generation),
        offset(r.offset),
        size(r.size),
        checksum(r.checksum),
        files(r.files),
        handle(r.handle) {}

  // The extents the handle protects: the model's one, or each of its files'.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> extents() const;

  const std::string model;
  const std::uint64_t generation;
  const std::uint64_t offset;
  const std::uint64_t size;
  const std::uint64_t checksum;
  const std::vector<proto::FileRef> files;  // a model of several files
  std::atomic<std::uint64_t> handle;        // the broker's; replaced after a reconnect
  // Guarded by Connection::mu_.
  std::uint64_t epoch = 0;  // the channel generation `handle` belongs to
  bool orphaned = false;    // not re-acquired after a reconnect
  // The segment whose byte-range lock covers [offset, offset + size) while
  // the Model holds it; null once released.
  std::shared_ptr<SegmentFile> locked_in;
};

// The segment file, opened O_RDONLY | O_CLOEXEC, and its one read-only
// mapping: the whole segment, mapped on the first acquire and shared by every
// Model of this segment (no mmap or munmap per acquire; the kernel maps only
// the pages a worker touches). It lives as long as its last Model.
class SegmentFile {
 public:
  SegmentFile(UniqueFd fd, std::uint64_t device, std::uint64_t inode, std::uint64_t file_size,
              std::uint64_t segment_size, std::uint64_t page_size)
      : fd_(std::move(fd)),
        device_(device),
        inode_(inode),
        segment_size_(segment_size),
        page_size_(page_size),
        file_size_(file_size) {}

  int fd() const { return fd_.get(); }
  std::uint64_t device() const { return device_; }
  std::uint64_t inode() const { return inode_; }
  std::uint64_t segment_size() const { return segment_size_; }
  std::uint64_t page_size() const { return page_size_; }
  // The file's size at the last fstat (refresh_file_size).
  std::uint64_t file_size() const { return file_size_.load(std::memory_order_relaxed); }
  void refresh_file_size();

  // [offset, offset + size) of the segment, mapped read-only; `populate`
  // faults its pages in first (MADV_POPULATE_READ). On 2 MiB pages the
  // first view of an extent in this process is populated anyway: one
  // madvise fills its page-table entries (a 2 MiB entry each) for less than
  // the page faults it saves, and later views find them in place.
  Result<std::span<const std::byte>> view(std::uint64_t offset, std::uint64_t size, bool populate);

  // Read locks (F_OFD_SETLK, F_RDLCK) on `extents` (offset, size) through
  // this file's descriptor while this process holds them: the broker never
  // punches or reuses a locked range, and the kernel drops the locks when
  // the process dies, so the guarantee outlives a broker restart without
  // depending on a reconnect. Each lock covers its extent's reservation: its
  // bytes and the rest of its last 2 MiB block (docs/protocol.md), so the
  // extents of a repository placed one after another are locked and
  // unlocked with one fcntl per run, not one per file. Counted per extent:
  // two Models of one extent take one lock, and the last unlock drops it.
  // All or none. Errors: kInternal when the kernel refuses a lock.
  using Extent = std::pair<std::uint64_t, std::uint64_t>;
  Status lock_extents(const std::vector<Extent>& extents);
  void unlock_extents(const std::vector<Extent>& extents);

 private:
  const UniqueFd fd_;
  const std::uint64_t device_;
  const std::uint64_t inode_;
  const std::uint64_t segment_size_;
  const std::uint64_t page_size_;
  std::atomic<std::uint64_t> file_size_;
  std::mutex map_mu_;
  Mapping mapping_;  // GUARDED_BY(map_mu_): empty until the first view
  std::set<std::pair<std::uint64_t, std::uint64_t>>
      populated_;  // GUARDED_BY(map_mu_): extents viewed on 2 MiB pages
  // [start, end) of the lock of the extent (offset, size).
  Extent lock_range(const Extent& e) const;
  // Sets `type` on the union of `ranges` ([start, end)), one fcntl per
  // run of touching ranges; a lock that fails undoes the ones before it.
  Status set_locks(std::vector<Extent> ranges, short type);

  std::mutex lock_mu_;
  std::unordered_map<std::uint64_t, std::uint32_t>
      locks_;  // GUARDED_BY(lock_mu_): offset -> holders
};

struct Acquired {
  proto::AcquireReply reply;
  std::shared_ptr<Lease> lease;
  std::shared_ptr<SegmentFile> segment;  // keeps `bytes` mapped
  std::span<const std::byte> bytes;
  std::vector<std::span<const std::byte>> files;  // reply.files' bytes
};

class Connection {
 public:
  // Connects, says hello (protocol 1) and opens the segment. A lost broker
  // is sought again for up to `reconnect_timeout` by the acquire that finds
  // it gone. With `release_ring`, releases go through a release ring when
  // the broker grants one.
  static Result<std::shared_ptr<Connection>> open(
      const std::string& socket_path,
      std::chrono::milliseconds reconnect_timeout = std::chrono::milliseconds(0),
      bool release_ring = true);

  // Acquires `model` and maps its bytes. On success the Lease is live until
  // release(lease).
  Result<Acquired> acquire(std::string_view model, std::optional<std::uint64_t> wait_ms,
                           bool populate);
  // Drops `lease`: sends the release and returns without waiting for the
  // reply. A handle that died with its connection needs no request.
  Status release(const std::shared_ptr<Lease>& lease);

  const std::string& pool() const { return pool_; }
  const std::string& segment_path() const { return segment_path_; }
  std::uint64_t page_size() const { return page_size_.load(std::memory_order_relaxed); }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

 private:
  Connection(std::string socket_path, std::unique_ptr<Channel> channel,
             const proto::HelloReply& hello, std::shared_ptr<SegmentFile> segment,
             std::chrono::milliseconds reconnect_timeout, bool release_ring);

  // The *_calling functions need call_mu_.
  Result<proto::AcquireReply> request_acquire_calling(const proto::AcquireRequest& request);
  Status reconnect_calling();
  // reconnect_calling(), retried with backoff until reconnect_timeout_.
  Status reconnect_with_backoff_calling();
  Status reprotect_calling(const std::shared_ptr<Lease>& lease, Channel& channel);
  Status check_reply(const proto::AcquireReply& reply, SegmentFile& segment);
  static Status check_extent(std::uint64_t offset, std::uint64_t size, std::string_view format,
                             SegmentFile& segment);
  std::shared_ptr<Channel> channel();

  const std::string socket_path_;
  const pid_t owner_pid_;            // the process whose socket this is
  const std::uint64_t owner_forks_;  // fork_generation() in that process
  const std::string pool_;
  const std::string segment_path_;
  const std::chrono::milliseconds reconnect_timeout_;
  const bool release_ring_;
  std::atomic<std::uint64_t> page_size_;

  // Held for a whole request/reply (which may wait for a load) and for a
  // reconnect; release() never takes it.
  std::mutex call_mu_;
  std::mutex mu_;                                      // short sections only
  std::shared_ptr<Channel> channel_;                   // GUARDED_BY(mu_)
  std::shared_ptr<SegmentFile> segment_;               // GUARDED_BY(mu_)
  std::uint64_t epoch_ = 0;                            // GUARDED_BY(mu_)
  std::unordered_set<std::shared_ptr<Lease>> leases_;  // GUARDED_BY(mu_)
};

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_CONNECTION_HPP_
