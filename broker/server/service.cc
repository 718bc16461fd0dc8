// File: broker/server/service.cc
//
// The acquire/release/load flow. A miss reserves an extent (Pool), reserves
// its memory (Segment::reserve, so a full filesystem is an error reply and
// never a SIGBUS), publishes a LOADING catalog entry and hands the read to
// the Loader. The loader thread validates the format; the result comes back
// to the event loop, which publishes READY (or frees everything) and answers
// every waiter.
#include "broker/server/service.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "broker/server/log_text.hpp"
#include "broker/store/verify.hpp"
#include "shm/format/tensor_index.hpp"
#include "shm/layout/paths.hpp"
#include "shm/protocol/frame.hpp"
#include "shm/protocol/hot_path.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {

namespace asio = boost::asio;
using nlohmann::json;

Service::Service(asio::io_context& io, const Config& config, CatalogStore& store,
                 LoadRunner& loader, NameResolver& names)
    : io_(io),
      config_(config),
      store_(store),
      pool_(store.pool()),
      segment_(store.segment()),
      loader_(loader),
      names_(names),
      resolver_(names, nullptr, store.pool()),
      room_timer_(io),
      reap_timer_(io) {
  schedule_reap();  // superseded generations adopted while workers map them
}

std::int64_t Service::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

proto::HelloReply Service::hello() const {
  proto::HelloReply h;
  h.pool = config_.pool;
  h.segment_path = segment_.path();
  h.segment_size = segment_.size();
  h.page_size = segment_.page_size();
  return h;
}

void Service::acquire(const SessionPtr& s, const json& id, const proto::AcquireRequest& req) {
  ++stats_.acquires;
  Waiter w{s, id, Waiter::Kind::kAcquire, false, nullptr, std::chrono::steady_clock::now(), {}};
  if (s->handles().size() >= config_.max_handles_per_client) {
    fail(w, handles_cap_error());  // at once: neither a load nor a wait for room
    return;
  }
  std::chrono::steady_clock::time_point until{};
  if (req.wait_ms.value_or(0) > 0) {
    until = w.asked + std::chrono::milliseconds(std::min(*req.wait_ms, proto::kMaxWaitMs));
  }
  if (serve_group(req.model, w, until)) return;
  Resolution r = resolve(req.model);
  if (serve_remote(r, w)) return;
  if (req.wait_ms.value_or(0) > 0 && must_queue_behind(r)) {  // arrival order
    queue_for_room(req.model, std::move(w), *req.wait_ms);
    serve_room_waiters();  // the queue may hold only waiters that have gone
    return;
  }
  Status st = start_or_join(std::move(r), w);
  if (st.ok()) return;
  if (st.code() == ErrorCode::kPoolFull && req.wait_ms.value_or(0) > 0) {
    queue_for_room(req.model, std::move(w), *req.wait_ms);
    return;
  }
  fail(w, st);
}

void Service::load(const SessionPtr& s, const json& id, const proto::ModelRequest& req) {
  Waiter w{s, id, Waiter::Kind::kLoad, req.pin, nullptr, {}, {}};
  if (serve_group(req.model, w)) return;
  Status st = start_or_join(req.model, w);
  if (!st.ok()) fail(w, st);
}

void Service::preload(const std::string& model, bool pin, std::function<void(const Status&)> done) {
  Waiter w{{}, nullptr, Waiter::Kind::kPreload, pin, std::move(done), {}, {}};
  if (serve_group(model, w)) return;
  Status st = start_or_join(model, w);
  if (!st.ok()) fail(w, st);
}

Resolution Service::resolve(const std::string& model) {
  Resolution r = resolver_.resolve(model);
  if (r.root == nullptr && hf_cache() != nullptr) r = resolver_.resolve(model);
  if (r.hit()) return r;
  // Past the warm path references matter (a load may evict): take the
  // releases still waiting in rings first.
  collect_all_releases();
  resolver_.open(r);
  return r;
}

Status Service::start_or_join(const std::string& model, Waiter w) {
  if (shutting_down_) return error(ErrorCode::kShuttingDown, "the broker is shutting down");
  Resolution r = resolve(model);
  if (serve_remote(r, w)) return {};
  return start_or_join(std::move(r), std::move(w));
}

Status Service::start_or_join(Resolution r, Waiter w) {
  if (shutting_down_) return error(ErrorCode::kShuttingDown, "the broker is shutting down");
  if (!r.status.ok()) return r.status;
  const EntryInfo* cur = r.current;
  switch (r.state) {
    case Resolution::State::kHit:
      if (w.kind == Waiter::Kind::kAcquire) ++stats_.hits;
      grant(*cur, w, true);
      return {};
    case Resolution::State::kLoading:
      if (w.kind == Waiter::Kind::kAcquire) ++stats_.hits;
      inflight_.at(cur->id).waiters.push_back(std::move(w));
      return {};
    case Resolution::State::kStale:
      if (cur->state == layout::EntryState::kLoading) {
        // The file changed while its previous version loads: retry once that load ends.
        inflight_.at(cur->id).retry.emplace_back(r.model, std::move(w));
        return {};
      }
      break;
    case Resolution::State::kMiss:
      break;
  }
  const std::string& model = r.model;
  const layout::SourceIdentity source = r.file->identity();
  // One resident copy per file: another name (a symlink, a manifest alias,
  // the path itself) of a file already resident shares its bytes.
  if (const EntryInfo* twin = pool_.find_resident(source);
      twin != nullptr && twin->name != model && may_share(*twin, r)) {
    if (twin->state == layout::EntryState::kLoading) {
      inflight_.at(twin->id).retry.emplace_back(model, std::move(w));  // shared once it is ready
      return {};
    }
    const std::string shared = twin->name;
    auto res = store_.alias(model, twin->id, now_ns());
    if (!res.ok()) return res.status();
    forget(res->evicted);
    if (w.kind == Waiter::Kind::kAcquire) ++stats_.hits;
    spdlog::info("{} shares the resident copy of {} (the same file)", log_text(model),
                 log_text(shared));
    const EntryInfo entry = res->entry;
    grant(entry, w, true);
    return {};
  }
  forget(store_.reap());  // what workers stopped mapping is room too
  auto res = store_.begin_load(model, source, source.size, now_ns());
  schedule_reap();  // the generation it replaces may stay while a worker maps it
  if (!res.ok()) return res.status();
  if (w.kind == Waiter::Kind::kAcquire) ++stats_.misses;
  forget(res->evicted);
  const EntryInfo entry = res->entry;
  start_load(entry, std::move(r), std::move(w));
  return {};
}

void Service::start_load(const EntryInfo& e, Resolution resolved, Waiter w) {
  spdlog::info("load started: {} generation {} ({}) at offset {}", e.name, e.generation,
               units::format_bytes(e.size), e.offset);
  auto& in = inflight_[e.id];
  in.file = std::move(*resolved.file);
  in.waiters.push_back(std::move(w));
  in.sha256 = resolved.sha256;
  in.pin = resolved.pin;
  if (resolved.remote) {
    start_fetch(e, resolved);
    return;
  }
  // The loader reserves the entry's pages (its footprint) as it goes, so the
  // event loop never waits for the pages of a large model to be allocated.
  // The rest of the extent is offset space and stays a hole. It fails rather
  // than load bytes of another version (a disk tier blob is content-addressed,
  // and its identity the remote object's).
  LoadJob job{
      in.file.proc_path(),
      e.size,
      segment_.fd(),
      e.offset,
      [store = &store_](std::uint64_t off, std::uint64_t len) { return store->reserve(off, len); },
      e.footprint,
      is_remote(e.source) ? layout::SourceIdentity{} : e.source};
  loader_.submit(std::move(job),
                 [this, e, sha256 = resolved.sha256, name = in.file.name()](Result<LoadResult> r) {
                   on_loaded(e, std::move(r), sha256, name);
                 });
}

void Service::on_loaded(const EntryInfo& e, Result<LoadResult> r, const std::string& sha256,
                        const std::string& name) {
  layout::Format fmt = layout::Format::kRaw;
  if (r.ok()) {
    auto f = verify_loaded(segment_.fd(), e.offset, e.size, sha256, name);
    if (f.ok()) {
      fmt = *f;
    } else {
      r = Status(ErrorCode::kLoadFailed, f.status().message());
    }
  }
  asio::post(io_, [this, id = e.id, r = std::move(r), fmt]() mutable {
    finish_load(id, std::move(r), fmt);
  });
}

void Service::finish_load(EntryId id, Result<LoadResult> result, layout::Format format) {
  if (result.ok() && check_content(id, *result, format)) return;  // settled once compared
  settle_load(id, std::move(result), format, 0);
}

void Service::settle_load(EntryId id, Result<LoadResult> result, layout::Format format,
                          EntryId same_as) {
  auto node = inflight_.extract(id);
  Inflight in = std::move(node.mapped());
  if (result.ok()) {
    const EntryInfo* e = nullptr;
    if (same_as != 0) {
      // Its extent goes; the name reads the resident copy.
      if (auto folded = store_.fold(id, same_as, now_ns()); folded.ok()) {
        e = pool_.get(folded->entry.id);
        spdlog::info("{} holds the same bytes as {}: one copy kept", log_text(e->name),
                     log_text(pool_.get(same_as)->name));
      }
    }
    if (e == nullptr) {
      e = store_.finish_load(id, result->checksum, format, result->seconds);
      if (!in.sha256.empty()) verified_sha256_[id] = in.sha256;
    }
    stats_.record_load(e->size, result->seconds);
    spdlog::info("load finished: {} generation {}: {} in {:.3f} s ({:.2f} GB/s), format {}",
                 e->name, e->generation, units::format_bytes(e->size), result->seconds,
                 result->seconds > 0 ? static_cast<double>(e->size) / result->seconds / 1e9 : 0.0,
                 layout::to_string(format));
    if (in.pin) pin(*e, true);  // the manifest pins it
    const EntryInfo ready = *pool_.get(e->id);
    for (auto& w : in.waiters) grant(ready, w, false);
    forget(store_.enforce_watermark());
  } else {
    // A full filesystem is a matter of room (pool_full), not a failed load.
    if (result.status().code() != ErrorCode::kPoolFull) ++stats_.load_failures;
    const EntryInfo gone = store_.fail_load(id);
    spdlog::warn("load failed: {}: {}", gone.name, result.status().message());
    // A full filesystem is pool_full (the reservation failed); the rest is load_failed.
    const ErrorCode code = result.status().code();
    Status st = code == ErrorCode::kLoadFailed || code == ErrorCode::kPoolFull
                    ? result.status()
                    : Status(ErrorCode::kLoadFailed, result.status().message());
    for (auto& w : in.waiters) fail(w, st);
  }
  for (auto& [model, w] : in.retry) {
    if (Status st = start_or_join(model, w); !st.ok()) fail(w, st);
  }
  serve_room_waiters();
  if (inflight_.empty() && idle_cb_) idle_cb_();
}

void Service::grant(const EntryInfo& e, Waiter& w, bool cached) {
  if (w.kind == Waiter::Kind::kMember) {
    store_.add_ref(e.id, now_ns());
    w.member(Status(), &e, cached);
    return;
  }
  if (w.kind == Waiter::Kind::kPreload) {
    if (w.pin) pin(e, true);
    if (w.done) w.done(Status());
    return;
  }
  SessionPtr s = w.session.lock();
  if (!s || s->closed()) return;
  if (w.kind == Waiter::Kind::kLoad) {
    if (w.pin) pin(e, true);
    s->reply_ok(w.id, {{"model", e.name},
                       {"size", e.size},
                       {"generation", e.generation},
                       {"checksum", proto::checksum_to_hex(e.checksum)},
                       {"format", std::string(layout::to_string(e.format))},
                       {"cached", cached},
                       {"pinned", w.pin || e.pinned}});
    return;
  }
  proto::AcquireReply r{next_handle_,
                        e.name,
                        e.offset,
                        e.size,
                        e.generation,
                        e.checksum,
                        std::string(layout::to_string(e.format)),
                        cached,
                        {},
                        {}};
  if (s->handles().size() >= config_.max_handles_per_client) {
    s->reply_error(w.id, handles_cap_error());  // and no reference is taken
    return;
  }
  // Encode first: a reply that cannot be framed (a huge id) is refused, and
  // no reference or handle is taken for a grant the client never sees.
  std::string reply = proto::encode_acquire_reply(w.id, r);
  if (reply.size() > proto::kMaxFrame) {
    s->reply_error(nullptr, error(ErrorCode::kBadRequest,
                                  "the acquire reply would exceed the frame limit (" +
                                      std::to_string(reply.size()) +
                                      " bytes): the request's id is too large to echo"));
    return;
  }
  store_.add_ref(e.id, now_ns());
  const std::uint64_t h = next_handle_++;
  handles_[h] = Handle{{e.id}, s->id(), {}};
  s->handles().insert(h);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("{} acquired {} generation {} as handle {}", s->describe(), e.name, e.generation,
                  h);
  }
  s->send(std::move(reply));
  stats_.record_acquire(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - w.asked).count());
}

bool Service::may_share(const EntryInfo& twin, const Resolution& r) const {
  const layout::Format promised = format::format_for_name(r.file->name());
  if (promised != layout::Format::kRaw && promised != twin.format) return false;
  if (r.sha256.empty()) return true;
  auto it = verified_sha256_.find(twin.id);
  return it != verified_sha256_.end() && it->second == r.sha256;
}

void Service::pin(const EntryInfo& e, bool pinned) {
  (void)store_.set_pinned(e.name, pinned);  // `e` is current: found
}

Status Service::handles_cap_error() const {
  return error(ErrorCode::kPoolFull,
               "this connection holds " + std::to_string(config_.max_handles_per_client) +
                   " handles, the most allowed (--max-handles-per-client " +
                   std::to_string(config_.max_handles_per_client) + "): release one first");
}

void Service::fail(Waiter& w, const Status& status) {
  if (w.kind == Waiter::Kind::kMember) {
    w.member(status, nullptr, false);
    return;
  }
  if (w.kind == Waiter::Kind::kPreload) {
    if (w.done) w.done(status);
    return;
  }
  if (SessionPtr s = w.session.lock(); s && !s->closed()) s->reply_error(w.id, status);
}

void Service::release(Session& s, const json& id, std::uint64_t handle, bool reply) {
  if (!take_handle(s, id, handle, reply)) return;
  if (reply) s.send(proto::encode_ok_empty(id));
  after_release();
}

bool Service::take_handle(Session& s, const json& id, std::uint64_t handle, bool reply) {
  auto it = handles_.find(handle);
  if (it == handles_.end() || it->second.session != s.id()) {
    const Status st = error(ErrorCode::kStaleHandle,
                            "handle " + std::to_string(handle) +
                                " is not held by this connection (released already, or never "
                                "acquired)");
    if (reply) {
      s.reply_error(id, st);
    } else {
      spdlog::warn("{}: release without reply: {}", s.describe(), st.message());
    }
    return false;
  }
  ++stats_.releases;
  s.handles().erase(handle);
  drop_handle(handle);
  return true;
}

void Service::after_release() {
  forget(store_.enforce_watermark());  // as on disconnect: idle now, maybe above the mark
  serve_room_waiters();
}

void Service::drop_handle(std::uint64_t handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end()) return;
  const Handle held = std::move(it->second);
  handles_.erase(it);
  if (!held.group.empty()) {
    if (auto g = groups_.find(held.group); g != groups_.end() && g->second.refs > 0) {
      --g->second.refs;
    }
  }
  for (EntryId entry : held.entries) forget(store_.release_ref(entry));
  schedule_reap();
}

void Service::schedule_reap() {
  // Long enough to cost nothing, short enough that the memory of a model a
  // worker let go of after a restart returns within a second or so.
  static constexpr std::chrono::milliseconds kReapInterval{500};
  if (reap_armed_ || pool_.retained_count() == 0) return;
  reap_armed_ = true;
  reap_timer_.expires_after(kReapInterval);
  reap_timer_.async_wait([this](const boost::system::error_code& ec) {
    reap_armed_ = false;
    if (ec) return;
    const std::vector<EntryInfo> freed = store_.reap();
    if (!freed.empty()) {
      forget(freed);
      serve_room_waiters();
    }
    schedule_reap();
  });
}

void Service::disconnect(Session& s) {
  ring_sessions_.erase(s.id());  // its handles all go below, ring or not
  const std::size_t n = s.handles().size();
  for (std::uint64_t h : s.handles()) drop_handle(h);
  s.handles().clear();
  spdlog::info("{} disconnected{}", s.describe(),
               n ? ", released " + std::to_string(n) + " handle(s)" : "");
  if (n > 0) forget(store_.enforce_watermark());
  serve_room_waiters();  // also when it held nothing: it may have been waiting at the head
}

void Service::add_ring(const SessionPtr& s) { ring_sessions_[s->id()] = s; }

std::size_t Service::take_ring_releases(Session& s) {
  ring_scratch_.clear();
  const Status st = s.drain_ring(ring_scratch_);
  std::size_t n = 0;
  for (std::uint64_t h : ring_scratch_) n += take_handle(s, nullptr, h, false) ? 1 : 0;
  if (!st.ok()) {
    spdlog::warn("{} corrupted its release ring: {}; closing", s.describe(), st.message());
    s.drop_ring();
    ring_sessions_.erase(s.id());
    s.reply_error(nullptr, st);
    s.close_after_flush();
  }
  return n;
}

void Service::collect_releases(Session& s) {
  if (s.has_ring() && take_ring_releases(s) > 0) after_release();
}

void Service::collect_all_releases() {
  if (collecting_ || ring_sessions_.empty()) return;
  collecting_ = true;
  std::vector<SessionPtr> live;  // a drain may close a session, which leaves ring_sessions_
  live.reserve(ring_sessions_.size());
  for (auto& [id, weak] : ring_sessions_) {
    if (SessionPtr p = weak.lock(); p && !p->closed()) live.push_back(std::move(p));
  }
  std::size_t n = 0;
  for (const SessionPtr& p : live) n += take_ring_releases(*p);
  collecting_ = false;
  if (n > 0) after_release();
}

void Service::update_release_wake() {
  const bool want = !room_.empty();
  if (want == release_wake_) return;
  release_wake_ = want;
  for (auto& [id, weak] : ring_sessions_) {
    if (SessionPtr p = weak.lock()) p->set_ring_wake(want);
  }
  // A release pushed before the flag was seen sits in a ring: take it now.
  if (want) collect_all_releases();
}

void Service::forget(const std::vector<EntryInfo>& freed) {
  for (const auto& e : freed) {
    if (e.base != 0) continue;  // an alias: its bytes are another entry's
    verified_sha256_.erase(e.id);
    spdlog::info("evicted {} generation {} ({}, {} accesses)", e.name, e.generation,
                 units::format_bytes(e.footprint), e.accesses);
  }
}

}  // namespace modelpool::broker
