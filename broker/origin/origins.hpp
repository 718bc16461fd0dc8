// File: broker/origin/origins.hpp
//
// Where names that no local source has come from: the --origin list, tried
// in order, and the disk tier in front of it. Two steps, each run on the
// origins' own threads (network and disk never block the event loop):
//
//   locate(name)  the disk tier first (no origin request at all on a hit),
//                 then a probe of each origin in turn: the first that has
//                 the object gives its size, validator and digest;
//   fetch(...)    streams the object into the pool's extent and, when the
//                 tier has room, into a new blob of the tier at the same
//                 time. The pool never reads it back from disk. The bytes
//                 are hashed (XXH3 for the pool, SHA-256 for the tier and
//                 integrity) in one pass over the extent once they are all
//                 in, and checked against the expected digest (the
//                 manifest's, else the origin's) before anyone may read
//                 them: a mismatch is load_failed, and the tier's blob is
//                 removed. A tier that cannot take the blob (full disk) is
//                 logged and counted; the pool load goes on.
//
// Thread safety: every method may be called from any thread; callbacks run
// on an origin thread and must not throw.
#ifndef MODELPOOL_BROKER_ORIGIN_ORIGINS_HPP_
#define MODELPOOL_BROKER_ORIGIN_ORIGINS_HPP_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/origin/disk_tier.hpp"
#include "broker/origin/http_transfer.hpp"
#include "broker/origin/hub_repository.hpp"
#include "broker/origin/origin_url.hpp"
#include "broker/store/loader.hpp"
#include "shm/layout/segment_layout.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// The device number of identities of remote objects: no file has it.
inline constexpr std::uint64_t kRemoteDevice = 0xFFFF'FFFF'FFFF'FF00ULL;
inline bool is_remote(const layout::SourceIdentity& id) { return id.device == kRemoteDevice; }

// Where a name was found.
struct Located {
  std::string name;
  std::string origin;               // the origin's spec (no credentials)
  OriginRequest request;            // for fetch()
  ObjectInfo info;                  // size, validator, published digest
  int disk_fd = -1;                 // a tier hit: the blob, open (owned: see take_disk_fd)
  std::string disk_path;            // a tier hit's path, for logs
  std::string sha256;               // known digest: the tier's, the origin's, or ""
  layout::SourceIdentity identity;  // what the pool keys the bytes by

  Located() = default;
  Located(Located&& o) noexcept;
  Located& operator=(Located&& o) noexcept;
  Located(const Located&) = delete;
  Located& operator=(const Located&) = delete;
  ~Located();
  bool from_disk() const { return disk_fd >= 0; }
};

// A download's progress, read by `list` while it runs.
struct FetchProgress {
  std::atomic<std::uint64_t> bytes{0};
  std::uint64_t total = 0;
  std::int64_t started_ns = 0;  // CLOCK_REALTIME
  std::string origin;
};

struct OriginCounters {
  std::uint64_t requests = 0, bytes = 0, errors = 0, retries = 0;
  std::uint64_t fetches = 0;  // objects downloaded
  std::uint64_t integrity_failures = 0;
  std::uint64_t disk_hits = 0;  // names served from the tier
};

class Origins {
 public:
  struct Options {
    std::vector<std::string> origins;  // --origin, in order
    TransferOptions transfer;
    unsigned threads = 2;
    std::string disk_dir;  // --disk-cache ("" = no tier)
    std::uint64_t disk_budget = 0;
  };
  // Parses the origins (invalid_name naming a bad one) and opens the tier.
  static Result<std::unique_ptr<Origins>> create(Options options, const EnvFn& env);
  ~Origins();  // cancels downloads, joins the threads (queued jobs complete with shutting_down)
  Origins(const Origins&) = delete;
  Origins& operator=(const Origins&) = delete;

  // Ends downloads in flight and every later job with shutting_down.
  void cancel() { cancel_ = true; }
  // Whether --origin or --disk-cache is configured (a manifest may still
  // name origins of its own when not).
  // Whether --origin or --disk-cache is configured (a manifest may still
  // name origins of its own when not).
  bool enabled() const { return !origins_.empty() || tier_ != nullptr; }
  // Whether any origin (`first`, a manifest's, then --origin) could serve
  // `name`, by its form alone.
  bool may_serve(const std::string& name, const std::string& first = "") const;

  // The tier, then `first` (the manifest's origin for the name, or ""), then
  // each --origin. not_found names every origin asked. `want_sha256`: the
  // manifest's digest, or "": a tier blob must match it.
  void locate(std::string name, std::string want_sha256, std::string first,
              std::function<void(Result<Located>)> done);

  struct Destination {
    int fd = -1;  // the segment
    std::uint64_t offset = 0, footprint = 0;
    ReserveFn reserve;  // secures [offset, offset + footprint) first
  };
  // Downloads `where` (not a tier hit) into `dst`: the writes into the
  // extent allocate its pages (a full filesystem is kPoolFull) and
  // `reserve` takes the rest of the footprint. load_failed on any transfer
  // or integrity error. `done` runs before the tier's copy is committed.
  void fetch(const Located& where, Destination dst, std::string want_sha256,
             std::shared_ptr<FetchProgress> progress, std::function<void(Result<LoadResult>)> done);

  // Whether an hf:// origin is configured (hf:ORG/NAME@REV repositories).
  bool has_hub() const;
  // The snapshot of hf repository `name` on the first hub origin.
  void plan_hub(HfName name, RepositoryLimits limits,
                std::function<void(Result<HubSnapshot>)> done);

  OriginCounters counters() const;
  std::optional<DiskTierStats> tier_stats() const;
  const std::vector<Origin>& origins() const { return origins_; }

 private:
  Origins(Options options, std::vector<Origin> origins, std::unique_ptr<DiskTier> tier, EnvFn env);
  // `first` parsed (when valid) and then --origin's, in order.
  std::vector<Origin> with_first(const std::string& first) const;
  void run();
  void post(std::function<void()> job);
  Result<Located> do_locate(const std::string& name, const std::string& want_sha256,
                            const std::string& first);
  // On success, `keep` gets the tier's blob to commit as `keep_sha256`.
  Result<LoadResult> do_fetch(const Located& where, const Destination& dst,
                              const std::string& want_sha256, FetchProgress* progress,
                              std::optional<DiskTier::Writer>* keep, std::string* keep_sha256);
  void add(const TransferCounters& c, bool failed);

  Options options_;
  EnvFn env_;
  std::vector<Origin> origins_;
  std::unique_ptr<DiskTier> tier_;
  std::atomic<bool> cancel_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  OriginCounters counters_;  // under mu_
  std::vector<std::thread> threads_;
};

// The identity of a remote object: by its digest where known (so equal
// content is one copy), else by the object's key and validator.
layout::SourceIdentity remote_identity(const std::string& sha256, const std::string& key,
                                       const std::string& etag, std::uint64_t size);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_ORIGIN_ORIGINS_HPP_
