// File: broker/store/load_steps.cc
//
// The parts of LoadPipeline that both engines share: setup of the buffers,
// the ring and the hash state; what one read or write result means for a
// chunk (short -> resubmit the rest, EOF -> "file shrank", error -> cause);
// the Destination; and the pread/pwrite engine used where io_uring is not.
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#define MODELPOOL_XXH3_DISPATCH 1
#endif

#include <algorithm>
#include <cerrno>
#include <utility>

#include "broker/store/errno_text.hpp"
#include "broker/store/load_pipeline.hpp"
#include "shm/layout/segment_layout.hpp"

namespace modelpool::broker {
namespace {

constexpr std::uint64_t kDirectAlign = 4096;  // covers every logical block size we meet

}  // namespace

Result<Destination> Destination::open(int fd, std::uint64_t offset, std::uint64_t len) {
  Destination d(fd, offset);
  struct statfs fs {};
  if (len == 0 || ::fstatfs(fd, &fs) != 0 ||
      static_cast<unsigned long>(fs.f_type) != HUGETLBFS_MAGIC) {
    return d;
  }
  const auto page = static_cast<std::uint64_t>(fs.f_bsize);
  d.map_offset_ = layout::align_down(offset, page);
  d.map_len_ = layout::align_up(offset + len, page) - d.map_offset_;
  void* p = ::mmap(nullptr, d.map_len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                   static_cast<off_t>(d.map_offset_));
  if (p == MAP_FAILED) {
    // A shared hugetlbfs mapping reserves its pages up front: ENOMEM here
    // means the kernel's pool (or the mount's size=) has too few left.
    const int err = errno;
    const std::string what = "mapping " + std::to_string(d.map_len_ / page) + " pages of " +
                             std::to_string(page >> 20) + " MiB for the extent: " + errno_text(err);
    return err == ENOMEM ? error(ErrorCode::kPoolFull, "no free huge pages: " + what)
                         : error(ErrorCode::kLoadFailed, what);
  }
  d.map_ = static_cast<char*>(p);
  return d;
}

Destination::Destination(Destination&& other) noexcept
    : fd_(other.fd_),
      offset_(other.offset_),
      map_(std::exchange(other.map_, nullptr)),
      map_offset_(other.map_offset_),
      map_len_(other.map_len_) {}

Destination::~Destination() {
  if (map_ != nullptr) ::munmap(map_, map_len_);
}

LoadPipeline::LoadPipeline(std::size_t chunk_bytes, unsigned queue_depth, bool use_io_uring)
    : chunk_bytes_(chunk_bytes), depth_(queue_depth), chunks_(queue_depth) {
  hash_ = XXH3_createState();
  const std::size_t total = chunk_bytes_ * depth_;
  // Pre-faulted once: a fresh page costs ~10 us to touch on our VMs.
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED || hash_ == nullptr) return;
  buffers_ = static_cast<char*>(p);
  if (!use_io_uring || io_uring_queue_init(depth_ * 2, &ring_, 0) != 0) return;
  ring_ok_ = true;
  std::vector<iovec> iov(depth_);
  for (unsigned i = 0; i < depth_; ++i) iov[i] = {buffer(i), chunk_bytes_};
  fixed_ = io_uring_register_buffers(&ring_, iov.data(), depth_) == 0;
}

LoadPipeline::~LoadPipeline() {
  if (ring_ok_) io_uring_queue_exit(&ring_);
  if (buffers_ != nullptr) ::munmap(buffers_, chunk_bytes_ * depth_);
  if (hash_ != nullptr) XXH3_freeState(hash_);
}

Result<std::uint64_t> LoadPipeline::copy(SourceFile& src, const std::string& path,
                                         std::uint64_t size, const Destination& dst) {
  if (!usable()) return error(ErrorCode::kLoadFailed, "loader has no buffers (out of memory)");
  Job job{src, path, size, dst, (size + chunk_bytes_ - 1) / chunk_bytes_, 0, 0, 0, 0, Status()};
  XXH3_64bits_reset(hash_);
  for (Chunk& c : chunks_) c = Chunk{};
  return ring_ok_ ? copy_uring(job) : copy_sync(job);
}

void LoadPipeline::hash(const char* p, std::size_t n) {
#ifdef MODELPOOL_XXH3_DISPATCH
  XXH3_64bits_update_dispatch(hash_, p, n);
#else
  XXH3_64bits_update(hash_, p, n);
#endif
}

void LoadPipeline::plan_read(Chunk& c, bool direct) const {
  if (!direct) {
    c.req_off = c.got;
    c.req_len = c.len - c.got;
    return;
  }
  // O_DIRECT: aligned offset and length; the buffer holds the rounded-up
  // tail, and the read of the last block returns just the bytes that exist.
  c.req_off = static_cast<std::size_t>(layout::align_down(c.got, kDirectAlign));
  c.req_len = static_cast<std::size_t>(layout::align_up(c.len, kDirectAlign)) - c.req_off;
}

LoadPipeline::Step LoadPipeline::on_read(Chunk& c, char* buf, ssize_t res, const Job& job,
                                         Status* failure) const {
  res = job.src.filter_read(c.pos + c.req_off, buf + c.req_off, c.req_len, res);
  if (res == -EAGAIN || res == -EINTR) return Step::kAgain;
  if (res < 0) {
    *failure = error(ErrorCode::kLoadFailed, "reading " + job.path + " at offset " +
                                                 std::to_string(c.pos + c.req_off) + ": " +
                                                 errno_text(static_cast<int>(-res)));
    return Step::kFailed;
  }
  const std::size_t end = c.req_off + std::min(static_cast<std::size_t>(res), c.req_len);
  if (end <= c.got) {  // EOF, or (O_DIRECT) no progress past what we had
    *failure = error(ErrorCode::kLoadFailed,
                     job.path + ": file shrank during load (end of file at byte " +
                         std::to_string(c.pos + c.got) + " of " + std::to_string(job.size) + ")");
    return Step::kFailed;
  }
  c.got = std::min(end, c.len);
  if (c.got == c.len) return Step::kDone;
  plan_read(c, job.src.direct());
  return Step::kAgain;
}

LoadPipeline::Step LoadPipeline::on_write(Chunk& c, ssize_t res, const Job& job,
                                          Status* failure) const {
  if (res == -EAGAIN || res == -EINTR) return Step::kAgain;
  if (res <= 0) {
    const std::string why = res == 0 ? "no progress" : errno_text(static_cast<int>(-res));
    const std::string where = "writing " + job.path + " into the segment at offset " +
                              std::to_string(job.dst.offset() + c.pos + c.put) + ": " + why;
    // The writes allocate the extent's pages: a full filesystem is a matter
    // of room, as when Segment::reserve finds it.
    *failure = res == -ENOSPC ? error(ErrorCode::kPoolFull, "filesystem full: " + where)
                              : error(ErrorCode::kLoadFailed, where);
    return Step::kFailed;
  }
  c.put += static_cast<std::size_t>(res);
  return c.put >= c.len ? Step::kDone : Step::kAgain;
}

Result<std::uint64_t> LoadPipeline::copy_sync(Job& job) {
  Chunk& c = chunks_[0];
  for (std::uint64_t k = 0; k < job.nchunks; ++k) {
    c = Chunk{};
    c.pos = k * chunk_bytes_;
    c.len = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes_, job.size - c.pos));
    char* buf = target(job, 0);
    plan_read(c, job.src.direct());
    for (Step s = Step::kAgain; s != Step::kDone;) {
      ssize_t r =
          ::pread(job.src.fd(), buf + c.req_off, c.req_len, static_cast<off_t>(c.pos + c.req_off));
      s = on_read(c, buf, r < 0 ? -errno : r, job, &job.failure);
      if (s == Step::kFailed) return job.failure;
    }
    hash(buf, c.len);
    if (job.dst.mapped()) continue;  // read in place
    for (Step s = Step::kAgain; s != Step::kDone;) {
      ssize_t w = ::pwrite(job.dst.fd(), buf + c.put, c.len - c.put,
                           static_cast<off_t>(job.dst.offset() + c.pos + c.put));
      s = on_write(c, w < 0 ? -errno : w, job, &job.failure);
      if (s == Step::kFailed) return job.failure;
    }
  }
  return static_cast<std::uint64_t>(XXH3_64bits_digest(hash_));
}

}  // namespace modelpool::broker
