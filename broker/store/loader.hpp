// File: broker/store/loader.hpp
//
// Loads model files into segment extents off the event loop. Each loader
// thread owns an io_uring and a few pre-faulted, registered bounce buffers:
// reads of the source run `queue_depth` chunks ahead, each chunk is hashed
// (XXH3-64, streaming, in file order, while it is hot in cache) and then
// written to the segment fd at its extent offset. This beat reading straight
// into a mapping of the extent and splice on the reference VM: see the
// numbers in broker/store/README.md. On hugetlbfs, which refuses write(),
// chunks are copied into a temporary mapping of the extent instead. Where
// io_uring is unavailable (seccomp, old kernel), pread/pwrite do the same.
//
// Thread safety: submit() may be called from any thread. `done` runs on a
// loader thread, exactly once per submitted job, and must not throw.
#ifndef MODELPOOL_BROKER_STORE_LOADER_HPP_
#define MODELPOOL_BROKER_STORE_LOADER_HPP_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/store/file_system.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// Allocates [offset, offset + len) of the segment (Segment::reserve: fallocate;
// a full filesystem is kPoolFull). Called from the loader thread.
using ReserveFn = std::function<Status(std::uint64_t offset, std::uint64_t len)>;

struct LoadJob {
  std::string path;                 // model file, resolved and confined by the caller
  std::uint64_t expected_size = 0;  // from the caller's fstat; any change -> kLoadFailed
  int dst_fd = -1;                  // segment fd, open read-write; must outlive the job
  std::uint64_t dst_offset = 0;     // extent start
  // With `reserve`, the loader secures the entry's `footprint` bytes from
  // dst_offset itself, off the caller's thread: the write()s of the copy
  // allocate the pages they fill (a full filesystem is then kPoolFull), or
  // on hugetlbfs the mapping the reads land in reserves them (too few free
  // huge pages is kPoolFull), and `reserve` takes the rest of the footprint
  // after them (on 2 MiB pages, the last page's tail past the file's last
  // 4 KiB). Without it the footprint must be reserved already.
  ReserveFn reserve;
  std::uint64_t footprint = 0;
  // The identity the pool records for these bytes (from the resolver). When
  // set (non-zero inode), the file must still have it while it is copied:
  // bytes of another version would not match the record. Zero: not checked.
  layout::SourceIdentity source;
};

struct LoadResult {
  std::uint64_t checksum = 0;  // XXH3_64bits of all bytes
  double seconds = 0;          // wall time from open to last byte written
  std::uint64_t bytes = 0;
  bool direct_io = false;  // the source was actually read with O_DIRECT
  bool io_uring = false;   // the io_uring engine did it (else pread/pwrite)
};

class LoadPipeline;
class Destination;

// What the Service asks of a loader: a job in, its one result out, later,
// on another thread. Loader below is the broker's; tests give the Service a
// runner they complete by hand (tests/service/service_test.cc).
class LoadRunner {
 public:
  virtual ~LoadRunner() = default;
  // Calls `done` exactly once, from any thread, with the result.
  virtual void submit(LoadJob job, std::function<void(Result<LoadResult>)> done) = 0;
};

class Loader final : public LoadRunner {
 public:
  struct Options {
    unsigned threads = 1;
    std::size_t chunk_bytes = 4 << 20;  // rounded to 4 KiB, clamped to [64 KiB, 64 MiB]
    unsigned queue_depth = 4;           // chunks in flight per load, clamped to [1, 64]
    bool direct_io = false;             // O_DIRECT where the filesystem allows it
    bool use_io_uring = true;           // false: pread/pwrite (tests, seccomp'd hosts)
  };

  explicit Loader(Options options, std::shared_ptr<FileSystem> fs = default_file_system());
  // Stops: running jobs finish; queued ones complete with kShuttingDown.
  ~Loader() override;
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Runs `job` on a loader thread and then calls `done` there, exactly once
  // (on the caller's thread, with kInternal, if no loader thread could start),
  // with the result or kNotFound (file gone) / kLoadFailed (read or write
  // error, size changed: the message names the path and the cause) /
  // kShuttingDown. The extent's bytes are undefined after a failure.
  //
  // A file changed in place is never loaded as a mix of two versions: statx
  // of the source before and after the copy must agree (device, inode, size,
  // mtime, ctime). On a difference the copy is redone, at most
  // kMaxCopyAttempts times in all, as long as the file still has the
  // job's `source` identity (a change that only moved ctime, such as a
  // rewrite that put mtime back); a new size or identity is kLoadFailed at
  // once ("changed during the load: mtime_ns A -> B"), since those bytes
  // would not match what the pool records: the next acquire resolves the
  // file again and loads its new version. Limit: a write() already running
  // when the first statx is taken stamped its times before, and is not seen.
  void submit(LoadJob job, std::function<void(Result<LoadResult>)> done) override;

  const Options& options() const { return options_; }

  static constexpr int kMaxCopyAttempts = 3;

 private:
  struct Task {
    LoadJob job;
    std::function<void(Result<LoadResult>)> done;
  };
  void thread_main();
  Result<LoadResult> run(const LoadJob& job, LoadPipeline& pipeline);
  // Copies until statx before and after agree (see submit()); the checksum.
  Result<std::uint64_t> copy_unchanged(const LoadJob& job, SourceFile& file, LoadPipeline& pipeline,
                                       const Destination& dst);

  Options options_;
  std::shared_ptr<FileSystem> fs_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;   // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_LOADER_HPP_
