// File: broker/store/load_pipeline.hpp
//
// The copy engine of one loader thread (internal to broker/store): an
// io_uring, `queue_depth` pre-faulted bounce buffers registered with it, and
// an XXH3 state. copy() streams a source file into a Destination:
//
//   read chunk k (in flight with k+1 .. k+depth-1) -> hash k -> write k
//
// Chunk k always uses buffer k % depth; hashing is strictly in file order.
// A mapped Destination (hugetlbfs) skips the buffers: chunk k is read
// straight into its place in the extent, on io-wq, and hashed there.
// Short reads and writes resubmit the remainder. On any failure no new I/O
// is started and copy() returns only when nothing is in flight, so neither
// the buffers nor the extent are written by a job that has already ended.
// Not thread-safe: one per loader thread.
#ifndef MODELPOOL_BROKER_STORE_LOAD_PIPELINE_HPP_
#define MODELPOOL_BROKER_STORE_LOAD_PIPELINE_HPP_

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "broker/store/file_system.hpp"
#include "shm/status.hpp"

struct XXH3_state_s;

namespace modelpool::broker {

// Where the bytes go: pwrite-style to the segment fd, or, on hugetlbfs (no
// write()), straight into a mapping of the extent made for this job (the
// reads land there). A shared hugetlbfs mapping reserves its pages, so
// open() fails with kPoolFull when the kernel's pool has too few.
class Destination {
 public:
  static Result<Destination> open(int fd, std::uint64_t offset, std::uint64_t len);

  Destination(Destination&& other) noexcept;
  Destination& operator=(Destination&&) = delete;
  ~Destination();

  int fd() const { return fd_; }
  std::uint64_t offset() const { return offset_; }
  bool mapped() const { return map_ != nullptr; }
  char* at(std::uint64_t pos) const { return map_ + (offset_ - map_offset_) + pos; }

 private:
  Destination(int fd, std::uint64_t offset) : fd_(fd), offset_(offset) {}
  int fd_;
  std::uint64_t offset_;
  char* map_ = nullptr;
  std::uint64_t map_offset_ = 0;
  std::size_t map_len_ = 0;
};

class LoadPipeline {
 public:
  LoadPipeline(std::size_t chunk_bytes, unsigned queue_depth, bool use_io_uring);
  ~LoadPipeline();
  LoadPipeline(const LoadPipeline&) = delete;
  LoadPipeline& operator=(const LoadPipeline&) = delete;

  // Buffers could not be allocated: every copy() fails.
  bool usable() const { return buffers_ != nullptr; }
  bool uses_io_uring() const { return ring_ok_; }

  // Copies bytes [0, size) of `src` to `dst` and returns their XXH3-64.
  // Errors (kLoadFailed, message names `path`): read error, EOF before
  // `size` ("file shrank during load"), write error; a write that finds the
  // filesystem full is kPoolFull ("filesystem full").
  Result<std::uint64_t> copy(SourceFile& src, const std::string& path, std::uint64_t size,
                             const Destination& dst);

 private:
  enum class Phase { kIdle, kReading, kFull, kWriting };
  struct Chunk {
    std::uint64_t pos = 0;    // file offset of the chunk
    std::size_t len = 0;      // bytes wanted
    std::size_t got = 0;      // bytes read so far
    std::size_t put = 0;      // bytes written so far
    std::size_t req_off = 0;  // the read in flight: [req_off, req_off + req_len)
    std::size_t req_len = 0;
    Phase phase = Phase::kIdle;
  };
  enum class Step { kDone, kAgain, kFailed };
  struct Job {  // one copy() in progress
    SourceFile& src;
    const std::string& path;
    std::uint64_t size;
    const Destination& dst;
    std::uint64_t nchunks;
    std::uint64_t next_read = 0;  // next chunk to start reading
    std::uint64_t next_hash = 0;  // next chunk to hash (file order)
    std::uint64_t finished = 0;   // chunks hashed and written
    unsigned inflight = 0;        // operations in the ring
    Status failure;
  };

  char* buffer(unsigned i) const { return buffers_ + static_cast<std::size_t>(i) * chunk_bytes_; }
  // Where chunk `b` of `job` is read to: its place in a mapped destination,
  // else its bounce buffer.
  char* target(const Job& job, unsigned b) const {
    return job.dst.mapped() ? job.dst.at(chunks_[b].pos) : buffer(b);
  }
  // XXH3_64bits_update with the widest vector unit the CPU has (AVX2 or
  // AVX-512, through libxxhash's x86 dispatcher; the plain entry point uses
  // SSE2 and hashes a cached 4 MiB chunk at about half the rate).
  void hash(const char* p, std::size_t n);
  void plan_read(Chunk& c, bool direct) const;
  // `buf` is where the chunk is read to (target()).
  Step on_read(Chunk& c, char* buf, ssize_t res, const Job& job, Status* failure) const;
  Step on_write(Chunk& c, ssize_t res, const Job& job, Status* failure) const;

  Result<std::uint64_t> copy_sync(Job& job);
  Result<std::uint64_t> copy_uring(Job& job);
  void start_chunk(Job& job);
  void hash_ready_chunks(Job& job);
  void handle_cqe(Job& job, std::uint64_t user_data, int res);
  void queue_read(Job& job, unsigned b);
  void queue_write(Job& job, unsigned b);

  std::size_t chunk_bytes_;
  unsigned depth_;
  char* buffers_ = nullptr;  // depth_ * chunk_bytes_, page aligned, pre-faulted
  std::vector<Chunk> chunks_;
  XXH3_state_s* hash_ = nullptr;
  io_uring ring_{};
  bool ring_ok_ = false;
  bool fixed_ = false;  // buffers registered with the ring
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_LOAD_PIPELINE_HPP_
