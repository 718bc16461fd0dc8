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
// Thread-safe: requests are serialized by `mu_`; mapping happens outside it.
// Fork: the socket belongs to the process that connected. In a forked child
// acquire() fails and release() sends nothing (the handles are the parent's).
// Returns Status/Result, never throws.
#ifndef MODELPOOL_CLIENTLIB_SRC_CONNECTION_HPP_
#define MODELPOOL_CLIENTLIB_SRC_CONNECTION_HPP_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "clientlib/src/channel.hpp"
#include "clientlib/src/mapping.hpp"
#include "clientlib/src/unix_socket.hpp"
#include "shm/protocol/messages.hpp"
#include "shm/status.hpp"

namespace modelpool::detail {

// One handle held by this connection for one Model.
struct Lease {
  explicit Lease(const proto::AcquireReply& r)
      : model(r.model),
        generation(r.generation),
        offset(r.offset),
        size(r.size),
        checksum(r.checksum),
        handle(r.handle) {}

  const std::string model;
  const std::uint64_t generation;
  const std::uint64_t offset;
  const std::uint64_t size;
  const std::uint64_t checksum;
  std::atomic<std::uint64_t> handle;  // the broker's; replaced after a reconnect
  // Guarded by Connection::mu_.
  std::uint64_t epoch = 0;  // the channel generation `handle` belongs to
  bool orphaned = false;    // not re-acquired after a reconnect
};

// The segment file, opened O_RDONLY | O_CLOEXEC.
struct SegmentFile {
  UniqueFd fd;
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::atomic<std::uint64_t> file_size{0};  // last fstat
};

struct Acquired {
  proto::AcquireReply reply;
  std::shared_ptr<Lease> lease;
  Mapping mapping;
};

class Connection {
 public:
  // Connects, says hello (protocol 1) and opens the segment.
  static Result<std::shared_ptr<Connection>> open(const std::string& socket_path);

  // Acquires `model` and maps its bytes. On success the Lease is live until
  // release(lease).
  Result<Acquired> acquire(std::string_view model, std::optional<std::uint64_t> wait_ms,
                           bool populate);
  // Drops `lease`. A handle that died with its connection needs no request.
  Status release(const std::shared_ptr<Lease>& lease);

  const std::string& pool() const { return pool_; }
  const std::string& segment_path() const { return segment_path_; }
  std::uint64_t page_size() const { return page_size_.load(std::memory_order_relaxed); }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

 private:
  Connection(std::string socket_path, Channel channel, const proto::HelloReply& hello,
             std::shared_ptr<SegmentFile> segment);

  Result<proto::AcquireReply> request_acquire_locked(const proto::AcquireRequest& request);
  Status check_reply_locked(const proto::AcquireReply& reply);
  Status reconnect_locked();
  Status reprotect_locked(Lease& lease);
  void release_handle_locked(std::uint64_t handle);

  const std::string socket_path_;
  const pid_t owner_pid_;  // the process whose socket this is
  const std::string pool_;
  const std::string segment_path_;
  std::atomic<std::uint64_t> page_size_;

  std::mutex mu_;
  std::optional<Channel> channel_;                     // GUARDED_BY(mu_)
  std::shared_ptr<SegmentFile> segment_;               // GUARDED_BY(mu_)
  std::uint64_t segment_size_ = 0;                     // GUARDED_BY(mu_)
  std::uint64_t epoch_ = 0;                            // GUARDED_BY(mu_)
  std::unordered_set<std::shared_ptr<Lease>> leases_;  // GUARDED_BY(mu_)
};

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_CONNECTION_HPP_
