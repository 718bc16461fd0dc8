// File: broker/store/loader.cc
//
// The loader's threads and queue, and one job from open to the statx
// re-check that proves the file did not change while it was copied (see
// loader.hpp). The copying itself is LoadPipeline's.
#include "broker/store/loader.hpp"

#include <algorithm>
#include <chrono>
#include <system_error>
#include <utility>

#include "broker/store/load_pipeline.hpp"
#include "shm/layout/segment_layout.hpp"

namespace modelpool::broker {
namespace {

Loader::Options sanitize(Loader::Options o) {
  constexpr std::size_t kPage = 4096;
  o.threads = std::clamp(o.threads, 1U, 64U);
  o.chunk_bytes = std::clamp<std::size_t>(o.chunk_bytes, 64 << 10, 64 << 20);
  o.chunk_bytes = (o.chunk_bytes + kPage - 1) / kPage * kPage;
  o.queue_depth = std::clamp(o.queue_depth, 1U, 64U);
  return o;
}

Status size_changed(const std::string& path, std::uint64_t expected, std::uint64_t now,
                    const char* when) {
  return error(ErrorCode::kLoadFailed, path + ": file " + (now < expected ? "shrank" : "grew") +
                                           " " + when + " (" + std::to_string(expected) + " -> " +
                                           std::to_string(now) + " bytes)");
}

}  // namespace

Loader::Loader(Options options, std::shared_ptr<FileSystem> fs)
    : options_(sanitize(options)), fs_(std::move(fs)) {
  try {
    threads_.reserve(options_.threads);
    for (unsigned i = 0; i < options_.threads; ++i) {
      threads_.emplace_back([this] { thread_main(); });
    }
  } catch (const std::system_error&) {
    // Fewer threads than asked (out of resources); with none, submit() fails
    // every job at once instead of queueing it forever.
  }
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void Loader::submit(LoadJob job, std::function<void(Result<LoadResult>)> done) {
  if (threads_.empty()) {
    done(error(ErrorCode::kInternal, "no loader thread could be started to load " + job.path));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Task{std::move(job), std::move(done)});
  }
  cv_.notify_one();
}

void Loader::thread_main() {
  std::unique_ptr<LoadPipeline> pipeline;
  for (;;) {
    Task task;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to answer
      task = std::move(queue_.front());
      queue_.pop_front();
      stopping = stopping_;
    }
    if (stopping) {
      task.done(error(ErrorCode::kShuttingDown, "loader stopped before loading " + task.job.path));
      continue;
    }
    if (pipeline == nullptr || !pipeline->usable()) {
      // Built on first use; rebuilt without io_uring if its ring broke.
      const bool uring = options_.use_io_uring && pipeline == nullptr;
      pipeline.reset();
      pipeline = std::make_unique<LoadPipeline>(options_.chunk_bytes, options_.queue_depth, uring);
    }
    task.done(run(task.job, *pipeline));
  }
}

Result<std::uint64_t> Loader::copy_unchanged(const LoadJob& job, SourceFile& file,
                                             LoadPipeline& pipeline, const Destination& dst) {
  std::string change;
  for (int attempt = 0; attempt < kMaxCopyAttempts; ++attempt) {
    auto before = file.version();
    if (!before.ok())
      return error(ErrorCode::kLoadFailed, job.path + ": " + before.status().message());
    if (before->identity.size != job.expected_size) {
      return size_changed(job.path, job.expected_size, before->identity.size,
                          attempt == 0 ? "since it was checked" : "during load");
    }
    if (job.source.inode != 0 && before->identity != job.source) {
      FileVersion recorded{job.source, before->ctime_ns};
      return error(ErrorCode::kLoadFailed,
                   job.path + ": file changed " +
                       (attempt == 0 ? "since it was checked" : "during the load") + " (" +
                       describe_change(recorded, *before) + "); the next acquire loads it again");
    }
    auto checksum = pipeline.copy(file, job.path, job.expected_size, dst);
    if (!checksum.ok()) return checksum.status();
    auto after = file.version();
    if (!after.ok())
      return error(ErrorCode::kLoadFailed, job.path + ": " + after.status().message());
    if (*after == *before) return checksum;
    if (after->identity.size != job.expected_size) {
      return size_changed(job.path, job.expected_size, after->identity.size, "during load");
    }
    change = describe_change(*before, *after);
  }
  return error(ErrorCode::kLoadFailed, job.path + ": file changed during the load, " +
                                           std::to_string(kMaxCopyAttempts) +
                                           " times (last: " + change + ")");
}

Result<LoadResult> Loader::run(const LoadJob& job, LoadPipeline& pipeline) {
  const auto start = std::chrono::steady_clock::now();
  auto src = fs_->open_source(job.path, options_.direct_io);
  if (!src.ok()) return src.status();
  SourceFile& file = **src;
  // The destination's pages are allocated as they are filled, off the event
  // loop and in parallel with the reads and the hash: through write() (on
  // io-wq) into a tmpfs, or by the faults of the reads into the mapping of
  // a hugetlbfs extent, whose pages the mapping reserved (ENOMEM there is
  // kPoolFull). Only the rest of the footprint past the file's last 4 KiB
  // is reserved afterwards.
  auto dst = Destination::open(job.dst_fd, job.dst_offset, job.expected_size);
  if (!dst.ok()) return dst.status();
  auto checksum = copy_unchanged(job, file, pipeline, *dst);
  if (!checksum.ok()) return checksum.status();
  if (job.reserve) {
    const std::uint64_t written = layout::align_up(job.expected_size, 4096);
    if (job.footprint > written) {
      if (Status r = job.reserve(job.dst_offset + written, job.footprint - written); !r.ok()) {
        return r;
      }
    }
  }
  LoadResult result;
  result.checksum = *checksum;
  result.bytes = job.expected_size;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.direct_io = file.direct();
  result.io_uring = pipeline.uses_io_uring();
  return result;
}

}  // namespace modelpool::broker
