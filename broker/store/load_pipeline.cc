// File: broker/store/load_pipeline.cc
//
// The io_uring engine of LoadPipeline (see load_pipeline.hpp). One operation
// at most is in flight per buffer; user_data is (buffer << 1) | is_write.
// Reads of a page-cache-hot file complete inline in io_uring_submit; writes
// to tmpfs are often handed to io-wq, which runs them on the other core
// while this thread hashes the next chunk: that overlap is where the
// engine's edge over pread/pwrite comes from (see README.md).
#include "broker/store/load_pipeline.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cerrno>

#include "broker/store/errno_text.hpp"

namespace modelpool::broker {

void LoadPipeline::queue_read(Job& job, unsigned b) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {  // cannot happen: the ring holds 2 * depth_ entries
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  Chunk& c = chunks_[b];
  c.phase = Phase::kReading;
  char* dst = target(job, b) + c.req_off;
  const auto len = static_cast<unsigned>(c.req_len);
  const std::uint64_t off = c.pos + c.req_off;
  if (job.dst.mapped()) {
    // Straight into the extent. IOSQE_ASYNC hands the copy (and the fault
    // that allocates and zeroes each 2 MiB page) to io-wq, so the chunks in
    // flight fill in parallel on the other core while this thread hashes.
    io_uring_prep_read(sqe, job.src.fd(), dst, len, off);
    sqe->flags |= IOSQE_ASYNC;
  } else if (fixed_) {
    io_uring_prep_read_fixed(sqe, job.src.fd(), dst, len, off, static_cast<int>(b));
  } else {
    io_uring_prep_read(sqe, job.src.fd(), dst, len, off);
  }
  io_uring_sqe_set_data64(sqe, static_cast<std::uint64_t>(b) << 1);
  ++job.inflight;
}

void LoadPipeline::queue_write(Job& job, unsigned b) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  Chunk& c = chunks_[b];
  c.phase = Phase::kWriting;
  const char* src = buffer(b) + c.put;
  const auto len = static_cast<unsigned>(c.len - c.put);
  const std::uint64_t off = job.dst.offset() + c.pos + c.put;
  if (fixed_) {
    io_uring_prep_write_fixed(sqe, job.dst.fd(), src, len, off, static_cast<int>(b));
  } else {
    io_uring_prep_write(sqe, job.dst.fd(), src, len, off);
  }
  io_uring_sqe_set_data64(sqe, (static_cast<std::uint64_t>(b) << 1) | 1);
  ++job.inflight;
}

// Starts reading chunk job.next_read if its buffer is free.
void LoadPipeline::start_chunk(Job& job) {
  const auto b = static_cast<unsigned>(job.next_read % depth_);
  Chunk& c = chunks_[b];
  if (c.phase != Phase::kIdle) return;
  c = Chunk{};
  c.pos = job.next_read * chunk_bytes_;
  c.len = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes_, job.size - c.pos));
  plan_read(c, job.src.direct());
  queue_read(job, b);
  ++job.next_read;
}

// Hashes every chunk that is next in file order and fully read, then sends
// it on to the destination.
void LoadPipeline::hash_ready_chunks(Job& job) {
  while (job.next_hash < job.nchunks) {
    const auto b = static_cast<unsigned>(job.next_hash % depth_);
    Chunk& c = chunks_[b];
    if (c.phase != Phase::kFull || c.pos != job.next_hash * chunk_bytes_) return;
    hash(target(job, b), c.len);
    ++job.next_hash;
    if (job.dst.mapped()) {  // read in place: nothing left to write
      c.phase = Phase::kIdle;
      ++job.finished;
    } else {
      c.put = 0;
      queue_write(job, b);
    }
  }
}

void LoadPipeline::handle_cqe(Job& job, std::uint64_t user_data, int res) {
  --job.inflight;
  const auto b = static_cast<unsigned>(user_data >> 1);
  Chunk& c = chunks_[b];
  if (!job.failure.ok()) {  // draining after a failure
    c.phase = Phase::kIdle;
    return;
  }
  if ((user_data & 1) == 0) {
    switch (on_read(c, target(job, b), res, job, &job.failure)) {
      case Step::kDone:
        c.phase = Phase::kFull;
        break;
      case Step::kAgain:
        queue_read(job, b);
        break;
      case Step::kFailed:
        c.phase = Phase::kIdle;
        break;
    }
    return;
  }
  switch (on_write(c, res, job, &job.failure)) {
    case Step::kDone:
      c.phase = Phase::kIdle;
      ++job.finished;
      break;
    case Step::kAgain:
      queue_write(job, b);
      break;
    case Step::kFailed:
      c.phase = Phase::kIdle;
      break;
  }
}

Result<std::uint64_t> LoadPipeline::copy_uring(Job& job) {
  auto advance = [&] {
    if (!job.failure.ok()) return;
    hash_ready_chunks(job);
    for (std::uint64_t before = ~0ULL; job.next_read < job.nchunks && job.next_read != before;) {
      before = job.next_read;
      start_chunk(job);
    }
  };
  advance();
  io_uring_submit(&ring_);
  while (job.inflight > 0) {
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe(&ring_, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) {
      // The ring itself failed and cannot be drained: abandon ring and
      // buffers (the kernel may still write them); unusable() now tells the
      // loader thread to build a fresh pipeline.
      ring_ok_ = false;
      buffers_ = nullptr;
      return error(ErrorCode::kLoadFailed, std::string("io_uring: ") + errno_text(-rc));
    }
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      handle_cqe(job, io_uring_cqe_get_data64(cqe), cqe->res);
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    advance();
    io_uring_submit(&ring_);
  }
  if (!job.failure.ok()) return job.failure;
  if (job.finished != job.nchunks) {
    return error(ErrorCode::kInternal, "loader: stalled after " + std::to_string(job.finished) +
                                           " of " + std::to_string(job.nchunks) + " chunks");
  }
  return static_cast<std::uint64_t>(XXH3_64bits_digest(hash_));
}

}  // namespace modelpool::broker
