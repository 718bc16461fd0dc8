// File: broker/server/service_admin.cc
//
// The admin side of Service (evict, pin, clear, stats, list, selfcheck) and
// the queue of acquires waiting for room (wait_ms), served in arrival order.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "broker/server/catalog_check.hpp"
#include "broker/server/log_text.hpp"
#include "broker/server/service.hpp"
#include "broker/system_info.hpp"
#include "shm/layout/paths.hpp"

namespace modelpool::broker {

Result<Evicted> Service::evict(std::string_view model) {
  if (pool_.find_current(model) == nullptr) {
    if (auto g = groups_.find(model); g != groups_.end()) {
      // As a unit: every file may go, or none does.
      std::vector<std::string> present;
      for (const GroupMember& m : g->second.plan->members) {
        const EntryInfo* e = pool_.find_current(m.entry);
        if (e == nullptr) continue;
        if (e->state == layout::EntryState::kLoading || e->refs > 0 || e->pinned) {
          return error(ErrorCode::kForbidden, "\"" + std::string(model) + "\" is " +
                                                  (e->pinned     ? "pinned"
                                                   : e->refs > 0 ? "in use"
                                                                 : "loading") +
                                                  " (" + m.file + ")");
        }
        present.push_back(m.entry);
      }
      Evicted out{std::string(model), 0};
      for (const std::string& name : present) {
        auto gone = store_.evict(name);
        if (!gone.ok()) return gone.status();  // shares pinned bytes: the rest stays
        out.bytes += gone->base != 0 ? 0 : gone->footprint;
        forget({*gone});
      }
      groups_.erase(g);
      serve_room_waiters();
      return out;
    }
  }
  auto gone = store_.evict(model);
  if (!gone.ok()) return gone.status();
  forget({*gone});
  serve_room_waiters();
  return Evicted{gone->name, gone->footprint};
}

Result<PinState> Service::set_pinned(std::string_view model, bool pinned) {
  const EntryInfo* e = pool_.find_current(model);
  if (e == nullptr) {
    if (const GroupInfo* g = find_group(model)) {
      for (const GroupMember& m : g->plan->members) {
        if (const EntryInfo* me = pool_.find_current(m.entry)) pin(*me, pinned);
      }
      spdlog::info("{} {} ({} files)", pinned ? "pinned" : "unpinned", log_text(model),
                   g->plan->members.size());
      if (!pinned) {
        forget(store_.enforce_watermark());
        serve_room_waiters();
      }
      return PinState{std::string(model), pinned};
    }
    if (Status s = store_.set_pinned(model, pinned); !s.ok()) return s;  // not_found, saying so
  } else {
    pin(*e, pinned);
    spdlog::info("{} {}", pinned ? "pinned" : "unpinned", log_text(model));
    if (!pinned) {
      forget(store_.enforce_watermark());
      serve_room_waiters();  // the unpinned model is evictable: a waiter may fit now
    }
  }
  return PinState{std::string(model), pinned};
}

Cleared Service::clear() {
  auto gone = store_.clear();
  groups_.clear();  // only idle entries go; a group in use keeps its files and is served again
  Cleared out{gone.size(), 0};
  for (const auto& e : gone) out.bytes += e.footprint;
  forget(gone);
  serve_room_waiters();
  return out;
}

std::vector<ModelRow> Service::list() const {
  std::vector<ModelRow> rows;
  std::unordered_map<std::string, std::string> member_of;
  for (const auto& [name, g] : groups_) {
    ModelRow row;
    row.entry.name = name;
    row.entry.state = layout::EntryState::kReady;
    GroupRow gr;
    gr.commit = g.plan->commit;
    gr.refs = g.refs;
    gr.accesses = g.accesses;
    gr.pinned = !g.plan->members.empty();
    for (const GroupMember& m : g.plan->members) {
      member_of.emplace(m.entry, name);
      const EntryInfo* e = pool_.find_current(m.entry);
      const bool resident = e != nullptr && e->state == layout::EntryState::kReady;
      gr.files.push_back(GroupFileRow{m.file, m.entry, m.size,
                                      resident ? std::string(layout::to_string(e->format)) : "",
                                      resident});
      row.entry.size += m.size;
      gr.pinned = gr.pinned && resident && e->pinned;
      if (!resident) row.entry.state = layout::EntryState::kLoading;  // "partial"
    }
    row.group = std::move(gr);
    rows.push_back(std::move(row));
  }
  for (const EntryInfo* e : pool_.entries()) {
    // Another name of a resident file: its bytes are that entry's.
    ModelRow row{*e, e->base != 0 ? pool_.get(e->base)->name : std::string(), {}, {}, {}};
    if (auto it = member_of.find(e->name); it != member_of.end()) row.member_of = it->second;
    if (auto it = inflight_.find(e->id); it != inflight_.end() && it->second.progress) {
      const FetchProgress& p = *it->second.progress;
      row.download = DownloadRow{p.origin, p.bytes.load(std::memory_order_relaxed), p.total,
                                 static_cast<double>(now_ns() - p.started_ns) / 1e9};
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

StatsReport Service::stats(std::size_t clients) const {
  StatsReport r;
  r.pool = config_.pool;
  r.version = MODELPOOL_VERSION;
  r.pid = static_cast<std::int64_t>(::getpid());
  r.process = read_process_info();
  r.uptime_s = uptime_s();
  r.counters = stats_;
  r.evictions = pool_.evictions();
  r.bytes_evicted = pool_.bytes_evicted();
  r.bytes_used = pool_.bytes_used();
  r.bytes_budget = pool_.budget();
  r.offset_space = segment_.size() - segment_.data_offset();
  r.offset_space_used = pool_.offset_space_used();
  r.largest_free_extent = pool_.largest_free_extent();
  r.clients = clients;
  r.handles = handles_.size();
  r.loads_in_flight = inflight_.size();
  r.waiting_for_room = room_.size();
  r.mem = read_meminfo();
  r.page_size = segment_.page_size();
  r.segment_path = segment_.path();
  r.eviction_policy = config_.policy.eviction;
  r.models = list();
  if (origins_ != nullptr && origins_->enabled()) {
    OriginReport o;
    for (const Origin& origin : origins_->origins()) o.origins.push_back(origin.spec);
    o.counters = origins_->counters();
    o.tier = origins_->tier_stats();
    r.origins = std::move(o);
  }
  return r;
}

SelfCheck Service::selfcheck() const {
  SelfCheck out;
  if (Status s = pool_.self_check(); !s.ok()) out.problems.push_back(s.message());
  for (std::string& p : check_catalog(pool_, segment_)) out.problems.push_back(std::move(p));
  return out;
}

void Service::set_shutting_down() {
  shutting_down_ = true;
  if (origins_ != nullptr) origins_->cancel();  // downloads end with shutting_down
  room_timer_.cancel();
  for (RoomWaiter& w : room_.drain()) {
    fail(w.waiter, error(ErrorCode::kShuttingDown, "the broker is shutting down"));
  }
  update_release_wake();
}

RoomQueue<Service::RoomWaiter>::Hooks Service::room_hooks() {
  RoomQueue<RoomWaiter>::Hooks h;
  h.serve = [this](RoomWaiter& w) {
    return w.group ? serve_queued_group(w) : start_or_join(w.model, w.waiter);
  };
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

void Service::queue_for_room(const std::string& model, Waiter w, std::uint64_t wait_ms, bool group,
                             std::chrono::steady_clock::time_point until) {
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
  room_.push(RoomWaiter{model, std::move(w), RoomWaitCount(session), group, until},
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
