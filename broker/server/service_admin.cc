// File: broker/server/service_admin.cc
//
// The admin side of Service (evict, pin, clear, stats, list, selfcheck) and
// the queue of acquires waiting for room (wait_ms), served in arrival order.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/server/catalog_check.hpp"
#include "broker/server/log_text.hpp"
#include "broker/server/service.hpp"
#include "broker/system_info.hpp"
#include "shm/layout/paths.hpp"

namespace modelpool::broker {

using nlohmann::json;

namespace {

json model_row(const Pool& pool, const EntryInfo& e) {
  json row = {{"name", e.name},
              {"size", e.size},
              {"refs", e.refs - e.alias_refs},  // its own: an alias's are on its row
              {"generation", e.generation},
              {"state", e.state == layout::EntryState::kReady ? "ready" : "loading"},
              {"pinned", e.pinned},
              {"current", e.current},
              {"format", std::string(layout::to_string(e.format))},
              {"accesses", e.accesses},
              {"last_access_unix_ms", e.last_access_ns / 1000000},
              {"load_seconds", e.load_seconds},
              {"offset", e.offset}};
  // Another name of a resident file: its bytes are that entry's.
  if (e.base != 0) row["shares"] = pool.get(e.base)->name;
  return row;
}

}  // namespace

Result<json> Service::evict(std::string_view model) {
  auto gone = store_.evict(model);
  if (!gone.ok()) return gone.status();
  forget({*gone});
  serve_room_waiters();
  return json{{"model", gone->name}, {"bytes", gone->footprint}};
}

Result<json> Service::set_pinned(std::string_view model, bool pinned) {
  const EntryInfo* e = pool_.find_current(model);
  if (e == nullptr) return store_.set_pinned(model, pinned);  // not_found, saying so
  pin(*e, pinned);
  spdlog::info("{} {}", pinned ? "pinned" : "unpinned", log_text(model));
  if (!pinned) {
    forget(store_.enforce_watermark());
    serve_room_waiters();  // the unpinned model is evictable: a waiter may fit now
  }
  return json{{"model", std::string(model)}, {"pinned", pinned}};
}

json Service::clear() {
  auto gone = store_.clear();
  std::uint64_t bytes = 0;
  for (const auto& e : gone) bytes += e.footprint;
  forget(gone);
  serve_room_waiters();
  return {{"evicted", gone.size()}, {"bytes", bytes}};
}

json Service::list() const {
  json rows = json::array();
  for (const EntryInfo* e : pool_.entries()) rows.push_back(model_row(pool_, *e));
  return {{"models", std::move(rows)}};
}

json Service::stats(std::size_t clients) const {
  const MemInfo mem = read_meminfo();
  const std::uint64_t requests = stats_.hits + stats_.misses;
  json j = {
      {"pool", config_.pool},
      {"pid", static_cast<std::int64_t>(::getpid())},
      {"uptime_s", uptime_s()},
      {"loads", stats_.loads},
      {"load_failures", stats_.load_failures},
      {"hits", stats_.hits},
      {"misses", stats_.misses},
      {"hit_rate",
       requests ? static_cast<double>(stats_.hits) / static_cast<double>(requests) : 0.0},
      {"acquires", stats_.acquires},
      {"releases", stats_.releases},
      {"evictions", pool_.evictions()},
      {"bytes_evicted", pool_.bytes_evicted()},
      {"bytes_loaded", stats_.bytes_loaded},
      {"load_seconds", stats_.load_seconds},
      {"bytes_used", pool_.bytes_used()},
      {"bytes_budget", pool_.budget()},
      {"offset_space", segment_.size() - segment_.data_offset()},
      {"offset_space_used", pool_.offset_space_used()},
      {"largest_free_extent", pool_.largest_free_extent()},
      {"clients", clients},
      {"handles", handles_.size()},
      {"loads_in_flight", inflight_.size()},
      {"waiting_for_room", room_.size()},
      {"mem_total", mem.total},
      {"mem_available", mem.available},
      {"page_size", segment_.page_size()},
      {"segment_path", segment_.path()},
      {"eviction_policy", config_.policy.eviction},
  };
  j["load_histogram"] = {{"le", Stats::kLoadBuckets}, {"counts", stats_.load_bucket_counts}};
  j["models"] = list()["models"];
  return j;
}

json Service::selfcheck() const {
  json problems = json::array();
  if (Status s = pool_.self_check(); !s.ok()) problems.push_back(s.message());
  for (std::string& p : check_catalog(pool_, segment_)) problems.push_back(std::move(p));
  // Not "ok": the reply envelope's own "ok" (always true here) would overwrite it.
  return {{"consistent", problems.empty()}, {"problems", problems}};
}

void Service::set_shutting_down() {
  shutting_down_ = true;
  room_timer_.cancel();
  for (RoomWaiter& w : room_.drain()) {
    fail(w.waiter, error(ErrorCode::kShuttingDown, "the broker is shutting down"));
  }
  update_release_wake();
}

RoomQueue<Service::RoomWaiter>::Hooks Service::room_hooks() {
  RoomQueue<RoomWaiter>::Hooks h;
  h.serve = [this](RoomWaiter& w) { return start_or_join(w.model, w.waiter); };
  h.fail = [this](RoomWaiter& w, const Status& why) { fail(w.waiter, why); };
  h.expired = [this](RoomWaiter& w, std::chrono::milliseconds waited) {
    fail(w.waiter,
         error(ErrorCode::kPoolFull, "no room for \"" + w.model + "\" within " +
                                         std::to_string(waited.count()) +
                                         " ms: every evictable model is in use or pinned"));
  };
  h.gone = [](const RoomWaiter& w) {
    SessionPtr s = w.waiter.session.lock();
    return !s || s->closed();
  };
  return h;
}

void Service::queue_for_room(const std::string& model, Waiter w, std::uint64_t wait_ms) {
  // The client's number: clamp it before it becomes a duration (2^64-1 ms
  // would overflow the timer's clock arithmetic).
  wait_ms = std::min(wait_ms, proto::kMaxWaitMs);
  SessionPtr session = w.session.lock();
  if (!session || session->closed()) return;
  if (session->room_waits() >= config_.max_waiting_per_client) {
    fail(w, error(ErrorCode::kPoolFull,
                  "this connection already has " + std::to_string(session->room_waits()) +
                      " acquires waiting for room, the most allowed (--max-waiting-per-client " +
                      std::to_string(config_.max_waiting_per_client) + ")"));
    return;
  }
  room_.push(RoomWaiter{model, std::move(w), RoomWaitCount(session)},
             std::chrono::milliseconds(wait_ms));
  arm_room_timer();
  update_release_wake();
}

void Service::arm_room_timer() {
  const auto next = room_.next_deadline();
  if (!next || (room_timer_armed_ && room_timer_at_ <= *next)) return;
  room_timer_armed_ = true;
  room_timer_at_ = *next;
  room_timer_.expires_at(*next);  // a wait already armed ends with operation_aborted
  room_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // re-armed for an earlier deadline, or stopping
    room_timer_armed_ = false;
    room_.expire();
    update_release_wake();
    arm_room_timer();
  });
}

bool Service::must_queue_behind(const Resolution& r) const {
  if (room_.empty() || r.current != nullptr) return false;
  if (!r.status.ok() || !r.file) return false;  // start_or_join replies why, at once
  const PoolConfig& pc = pool_.config();
  const std::uint64_t size = r.file->identity().size;
  const std::uint64_t max = pc.max_model_size != 0 ? pc.max_model_size : pc.budget;
  return size <= max && pool_.footprint_for(size) <= pc.budget;  // else too_large, at once
}

void Service::serve_room_waiters() {
  room_.serve();
  update_release_wake();
}

}  // namespace modelpool::broker
