// File: broker/origin/digester.hpp
//
// The second half of a download, on a thread of its own: as the download
// completes the object from its first byte on (download()'s on_prefix),
// the Digester reads that prefix back from the pool's extent (memory: the
// segment is a tmpfs or hugetlbfs file), hashes it (XXH3-64 for the pool's
// record, SHA-256 for integrity and the disk tier's name) and writes it to
// the disk tier's blob. The network thread only receives and writes into
// the pool; hashing and the disk overlap with the transfer. A disk write
// that fails drops the tier's copy (disk_failed()), never the pool load.
//
// Thread safety: advance() from the downloading thread; finish() or abort()
// once, from the thread that made it.
#ifndef MODELPOOL_BROKER_ORIGIN_DIGESTER_HPP_
#define MODELPOOL_BROKER_ORIGIN_DIGESTER_HPP_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "shm/status.hpp"

struct XXH3_state_s;
struct evp_md_ctx_st;

namespace modelpool::broker {

struct Digests {
  std::uint64_t xxh3 = 0;
  std::string sha256;  // 64 lowercase hex
};

class Digester {
 public:
  // Bytes [offset, offset + size) of `fd`; `disk_fd` (or -1) gets them at 0.
  Digester(int fd, std::uint64_t offset, std::uint64_t size, int disk_fd, std::string what);
  ~Digester();  // abort()s when neither finish() nor abort() ran
  Digester(const Digester&) = delete;
  Digester& operator=(const Digester&) = delete;

  // Bytes [0, prefix) are all in the extent.
  void advance(std::uint64_t prefix);
  // All bytes are in: hashes what is left and returns the digests.
  Result<Digests> finish();
  void abort();
  // A write to the disk tier's blob failed (logged): the blob must go.
  bool disk_failed() const { return disk_failed_; }

 private:
  void run();
  void stop(bool abort);

  const int fd_;
  const std::uint64_t offset_, size_;
  const int disk_fd_;
  const std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t ready_ = 0;                    // under mu_
  bool finishing_ = false, aborting_ = false;  // under mu_
  // The thread's own until it is joined.
  std::uint64_t hashed_ = 0;
  bool disk_failed_ = false;
  Status error_;
  XXH3_state_s* xxh_ = nullptr;
  evp_md_ctx_st* sha_ = nullptr;
  std::thread thread_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_ORIGIN_DIGESTER_HPP_
