// File: broker/origin/origins.cc
#include "broker/origin/origins.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include "broker/origin/digester.hpp"
#include "broker/store/errno_text.hpp"
#include "broker/store/load_pipeline.hpp"

namespace modelpool::broker {

Located::Located(Located&& o) noexcept
    : name(std::move(o.name)),
      origin(std::move(o.origin)),
      request(std::move(o.request)),
      info(std::move(o.info)),
      disk_fd(std::exchange(o.disk_fd, -1)),
      disk_path(std::move(o.disk_path)),
      sha256(std::move(o.sha256)),
      identity(o.identity) {}

Located& Located::operator=(Located&& o) noexcept {
  if (this != &o) {
    if (disk_fd >= 0) ::close(disk_fd);
    name = std::move(o.name);
    origin = std::move(o.origin);
    request = std::move(o.request);
    info = std::move(o.info);
    disk_fd = std::exchange(o.disk_fd, -1);
    disk_path = std::move(o.disk_path);
    sha256 = std::move(o.sha256);
    identity = o.identity;
  }
  return *this;
}

Located::~Located() {
  if (disk_fd >= 0) ::close(disk_fd);
}

layout::SourceIdentity remote_identity(const std::string& sha256, const std::string& key,
                                       const std::string& etag, std::uint64_t size) {
  const std::string basis = sha256.empty() ? key + "\n" + etag : "sha256:" + sha256;
  return {kRemoteDevice, XXH3_64bits(basis.data(), basis.size()), size, 0};
}

Result<std::unique_ptr<Origins>> Origins::create(Options options, const EnvFn& env) {
  std::vector<Origin> parsed;
  for (const std::string& spec : options.origins) {
    auto o = parse_origin(spec, env);
    if (!o.ok()) return o.status();
    parsed.push_back(std::move(o).value());
  }
  std::unique_ptr<DiskTier> tier;
  if (!options.disk_dir.empty()) {
    auto t = DiskTier::open({options.disk_dir, options.disk_budget});
    if (!t.ok()) return t.status();
    tier = std::move(t).value();
  }
  auto either = [&](const char* lower, const char* upper) {
    const char* v = env ? env(lower) : nullptr;
    if (v == nullptr || *v == '\0') v = env ? env(upper) : nullptr;
    return std::string(v != nullptr ? v : "");
  };
  options.transfer.http_proxy = either("http_proxy", "HTTP_PROXY");
  options.transfer.https_proxy = either("https_proxy", "HTTPS_PROXY");
  options.transfer.no_proxy = either("no_proxy", "NO_PROXY");
  init_http();
  return std::unique_ptr<Origins>(
      new Origins(std::move(options), std::move(parsed), std::move(tier), env));
}

Origins::Origins(Options options, std::vector<Origin> origins, std::unique_ptr<DiskTier> tier,
                 EnvFn env)
    : options_(std::move(options)),
      env_(std::move(env)),
      origins_(std::move(origins)),
      tier_(std::move(tier)) {
  for (unsigned i = 0; i < std::max(1U, options_.threads); ++i) {
    threads_.emplace_back([this] { run(); });
  }
}

Origins::~Origins() {
  cancel_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Origins::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();  // after cancel_, jobs end at once with shutting_down
  }
}

void Origins::post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::vector<Origin> Origins::with_first(const std::string& first) const {
  std::vector<Origin> out;
  if (!first.empty()) {
    if (auto o = parse_origin(first, env_); o.ok()) out.push_back(std::move(o).value());
  }
  out.insert(out.end(), origins_.begin(), origins_.end());
  return out;
}

bool Origins::may_serve(const std::string& name, const std::string& first) const {
  for (const Origin& o : with_first(first)) {
    if (o.request(name)) return true;
  }
  return false;
}

bool Origins::has_hub() const {
  return std::any_of(origins_.begin(), origins_.end(),
                     [](const Origin& o) { return o.kind == Origin::Kind::kHub; });
}

void Origins::plan_hub(HfName name, RepositoryLimits limits,
                       std::function<void(Result<HubSnapshot>)> done) {
  post([this, name = std::move(name), limits, done = std::move(done)] {
    if (cancel_) {
      done(error(ErrorCode::kShuttingDown, "the broker is shutting down"));
      return;
    }
    const auto hub = std::find_if(origins_.begin(), origins_.end(),
                                  [](const Origin& o) { return o.kind == Origin::Kind::kHub; });
    if (hub == origins_.end()) {
      done(error(ErrorCode::kNotFound, "no hf:// origin to plan hf:" + name.repo + " on"));
      return;
    }
    TransferCounters c;
    auto snap = hub_snapshot(*hub, name, options_.transfer, limits, &c);
    add(c, !snap.ok() && snap.status().code() != ErrorCode::kNotFound);
    done(std::move(snap));
  });
}

void Origins::add(const TransferCounters& c, bool failed) {
  std::lock_guard lock(mu_);
  counters_.requests += c.requests;
  counters_.bytes += c.bytes;
  counters_.retries += c.retries;
  if (failed) ++counters_.errors;
}

OriginCounters Origins::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

std::optional<DiskTierStats> Origins::tier_stats() const {
  if (!tier_) return std::nullopt;
  return tier_->stats();
}

void Origins::locate(std::string name, std::string want_sha256, std::string first,
                     std::function<void(Result<Located>)> done) {
  post([this, name = std::move(name), want = std::move(want_sha256), first = std::move(first),
        done = std::move(done)] {
    if (cancel_) {
      done(error(ErrorCode::kShuttingDown, "the broker is shutting down"));
      return;
    }
    done(do_locate(name, want, first));
  });
}

Result<Located> Origins::do_locate(const std::string& name, const std::string& want_sha256,
                                   const std::string& first) {
  const std::vector<Origin> origins = with_first(first);
  if (tier_) {
    for (const Origin& o : origins) {
      auto req = o.request(name);
      if (!req) continue;
      auto hit = tier_->find(req->key);
      if (!hit) continue;
      Located l;
      l.disk_fd = hit->fd;
      if (!want_sha256.empty() && hit->sha256 != want_sha256) continue;  // ~Located closes it
      l.name = name;
      l.origin = o.spec;
      l.request = std::move(*req);
      l.disk_path = hit->path;
      l.sha256 = hit->sha256;
      l.info.size = hit->size;
      l.info.sha256 = hit->sha256;
      l.identity = remote_identity(l.sha256, l.request.key, "", hit->size);
      std::lock_guard lock(mu_);
      ++counters_.disk_hits;
      return l;
    }
  }
  std::optional<Status> first_error;
  std::string asked;
  for (const Origin& o : origins) {
    auto req = o.request(name);
    if (!req) continue;
    asked += (asked.empty() ? "" : ", ") + req->display;
    TransferCounters c;
    auto info = probe(*req, options_.transfer, &c);
    add(c, !info.ok() && info.status().code() != ErrorCode::kNotFound);
    if (info.ok()) {
      Located l;
      l.name = name;
      l.origin = o.spec;
      l.request = std::move(*req);
      l.info = std::move(info).value();
      l.sha256 = l.info.sha256;
      l.identity = remote_identity(l.sha256, l.request.key, l.info.etag, l.info.size);
      return l;
    }
    if (info.status().code() != ErrorCode::kNotFound && !first_error) first_error = info.status();
  }
  if (first_error) return *first_error;
  if (asked.empty()) {
    return error(ErrorCode::kNotFound, "\"" + name + "\" is not below --models, and no --origin " +
                                           "serves names of its form");
  }
  return error(
      ErrorCode::kNotFound,
      "\"" + name + "\" is not below --models, and no origin has it (asked " + asked + ")");
}

void Origins::fetch(const Located& where, Destination dst, std::string want_sha256,
                    std::shared_ptr<FetchProgress> progress,
                    std::function<void(Result<LoadResult>)> done) {
  // `where` is copied into the job (without a tier fd: it is not a tier hit).
  auto job = std::make_shared<Located>();
  job->name = where.name;
  job->origin = where.origin;
  job->request = where.request;
  job->info = where.info;
  job->sha256 = where.sha256;
  job->identity = where.identity;
  post([this, job, dst = std::move(dst), want = std::move(want_sha256),
        progress = std::move(progress), done = std::move(done)] {
    if (cancel_) {
      done(error(ErrorCode::kShuttingDown, "the broker is shutting down"));
      return;
    }
    // The pool's waiters are answered first; the tier's copy is made
    // durable (fsync, rename) after.
    std::optional<DiskTier::Writer> disk;
    std::string sha256;
    auto result = do_fetch(*job, dst, want, progress.get(), &disk, &sha256);
    done(std::move(result));
    if (disk) {
      if (Status cs = disk->commit(sha256); !cs.ok()) {
        spdlog::warn("disk tier: {} is not kept on disk: {}", job->request.display, cs.message());
      }
    }
  });
}

namespace {

Status write_all(int fd, const char* data, std::size_t n, std::uint64_t at) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = w < 0 ? errno : EIO;
      return error(e == ENOSPC || e == EDQUOT ? ErrorCode::kPoolFull : ErrorCode::kLoadFailed,
                   errno_text(e));
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    at += static_cast<std::uint64_t>(w);
  }
  return {};
}

}  // namespace

Result<LoadResult> Origins::do_fetch(const Located& where, const Destination& dst,
                                     const std::string& want_sha256, FetchProgress* progress,
                                     std::optional<DiskTier::Writer>* keep,
                                     std::string* keep_sha256) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t size = where.info.size;
  auto out = broker::Destination::open(dst.fd, dst.offset, size);
  if (!out.ok()) return out.status();
  std::optional<DiskTier::Writer> disk;
  if (tier_) {
    auto w = tier_->begin(where.request.key, size);
    if (w.ok()) {
      disk.emplace(std::move(w).value());
    } else {
      spdlog::warn("disk tier: {} is not kept on disk: {}", where.request.display,
                   w.status().message());
    }
  }
  Digester digester(dst.fd, dst.offset, size, disk ? disk->fd() : -1, where.request.display);
  Sink sink = [&](std::uint64_t off, const char* data, std::size_t n) -> Status {
    if (out->mapped()) {
      std::memcpy(out->at(off), data, n);
    } else if (Status st = write_all(out->fd(), data, n, out->offset() + off); !st.ok()) {
      return Status(st.code(), "writing into the pool: " + st.message());
    }
    return {};
  };
  TransferCounters c;
  std::atomic<std::uint64_t>* bytes = progress != nullptr ? &progress->bytes : nullptr;
  Status st = download(where.request, where.info, sink, options_.transfer, &c, bytes, &cancel_,
                       [&](std::uint64_t prefix) { digester.advance(prefix); });
  add(c, !st.ok() && st.code() != ErrorCode::kShuttingDown);
  if (!st.ok()) {
    digester.abort();
    return st;
  }
  auto digests = digester.finish();
  if (digester.disk_failed()) disk.reset();  // removes the .incomplete: never half-kept
  if (!digests.ok()) return digests.status();
  const std::string& expected = !want_sha256.empty() ? want_sha256 : where.info.sha256;
  if (!expected.empty() && digests->sha256 != expected) {
    {
      std::lock_guard lock(mu_);
      ++counters_.integrity_failures;
      ++counters_.errors;
    }
    return error(ErrorCode::kLoadFailed,
                 "origin " + where.request.display + ": the bytes' sha256 is " + digests->sha256 +
                     ", expected " + expected +
                     (!want_sha256.empty() ? " (the manifest's)" : " (the origin's)"));
  }
  // The writes allocated the pages they filled (a full filesystem was
  // pool_full); the rest of the footprint (the last page's tail) now.
  const std::uint64_t written = (size + 4095) / 4096 * 4096;
  if (dst.reserve && dst.footprint > written) {
    if (Status rs = dst.reserve(dst.offset + written, dst.footprint - written); !rs.ok()) return rs;
  }
  if (disk) {
    *keep = std::move(disk);
    *keep_sha256 = digests->sha256;
  }
  {
    std::lock_guard lock(mu_);
    ++counters_.fetches;
  }
  LoadResult r;
  r.checksum = digests->xxh3;
  r.bytes = size;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace modelpool::broker
