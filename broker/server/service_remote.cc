// File: broker/server/service_remote.cc
//
// Names that no local source has, from the origins and the disk tier
// (broker/origin/origins.hpp). The first acquire of such a name starts a
// search on the origins' threads; every acquire of it that arrives
// meanwhile joins that search, and once it is found they all go through
// start_or_join() as one: the first starts the download into the pool, the
// rest join its load (one transfer per host). A disk tier hit is loaded by
// the loader like any file. `list` shows a download's progress.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include "broker/server/log_text.hpp"
#include "broker/server/service.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {

namespace asio = boost::asio;

std::string Service::origin_name(const std::string& model) const {
  const Manifest* m = manifest();
  const ManifestEntry* listed = m != nullptr ? m->find(model) : nullptr;
  return listed != nullptr ? listed->path : model;
}

std::string Service::manifest_origin(const std::string& model) const {
  const Manifest* m = manifest();
  const ManifestEntry* listed = m != nullptr ? m->find(model) : nullptr;
  return listed != nullptr ? listed->origin : "";
}

bool Service::serve_remote(const Resolution& r, Waiter& w) {
  if (origins_ == nullptr || r.status.ok()) return false;
  const std::string first = manifest_origin(r.model);
  if (!origins_->enabled() && first.empty()) return false;
  // hf:REPO@REV/FILE is no path below --models (invalid_name there) but
  // may be a file on the hub; may_serve() checks its form.
  const ErrorCode code = r.status.code();
  const std::string name = origin_name(r.model);
  if (!(code == ErrorCode::kNotFound || (code == ErrorCode::kInvalidName && is_hf_name(name))) ||
      !origins_->may_serve(name, first)) {
    return false;
  }
  if (shutting_down_) {
    fail(w, error(ErrorCode::kShuttingDown, "the broker is shutting down"));
    return true;
  }
  std::vector<Waiter>& waiters = locating_[r.model];
  waiters.push_back(std::move(w));
  if (waiters.size() > 1) return true;  // joins the search in flight
  origins_->locate(name, r.sha256, first, [this, model = r.model](Result<Located> where) {
    auto shared = std::make_shared<Result<Located>>(std::move(where));
    asio::post(io_, [this, model, shared] { finish_locate(model, std::move(*shared)); });
  });
  return true;
}

void Service::finish_locate(const std::string& model, Result<Located> where) {
  auto node = locating_.extract(model);
  if (node.empty()) return;
  std::vector<Waiter> waiters = std::move(node.mapped());
  if (!where.ok()) {
    for (Waiter& w : waiters) fail(w, where.status());
    return;
  }
  auto found = std::make_shared<Located>(std::move(where).value());
  if (found->from_disk()) {
    spdlog::info("{}: from the disk tier ({})", log_text(model), log_text(found->disk_path));
  } else {
    spdlog::info("{}: from origin {} ({})", log_text(model), log_text(found->request.display),
                 units::format_bytes(found->info.size));
  }
  for (Waiter& w : waiters) {
    Resolution r = resolver_.resolve(model);  // the manifest's sha256 and pin
    r.status = {};
    const int fd = found->from_disk() ? ::fcntl(found->disk_fd, F_DUPFD_CLOEXEC, 0) : -1;
    r.file.emplace(fd, found->identity, found->name);
    if (!found->from_disk()) r.remote = found;
    resolver_.classify(r);
    if (Status st = start_or_join(std::move(r), w); !st.ok()) fail(w, st);
  }
}

void Service::start_fetch(const EntryInfo& e, const Resolution& resolved) {
  const Located& where = *resolved.remote;
  auto progress = std::make_shared<FetchProgress>();
  progress->total = e.size;
  progress->started_ns = now_ns();
  progress->origin = where.request.display;
  inflight_.at(e.id).progress = progress;
  Origins::Destination dst{
      segment_.fd(), e.offset, e.footprint,
      [store = &store_](std::uint64_t off, std::uint64_t len) { return store->reserve(off, len); }};
  // The download checks the manifest's sha256 itself (before anyone reads),
  // so the format check after it need not hash again.
  origins_->fetch(where, std::move(dst), resolved.sha256, std::move(progress),
                  [this, e, name = resolved.file->name()](Result<LoadResult> r) {
                    on_loaded(e, std::move(r), "", name);
                  });
}

}  // namespace modelpool::broker
