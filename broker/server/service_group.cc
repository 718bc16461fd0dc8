// File: broker/server/service_group.cc
//
// Models of several files: a repository below --models, a snapshot of the
// Hugging Face cache (hf:ORG/NAME[@REV]) and a GGUF split set. Each file is
// an ordinary pool entry under the name plan_group() gives it (so the same
// file in two repositories or revisions is one entry and one copy), and the
// model is served as one: one handle holding a reference on every file,
// answered once all are in; pinned, evicted and listed as a unit.
//
// Every member is started through start_or_join() with a kMember waiter. A
// member's reference is taken the moment it is granted, so loading a later
// member may evict anything but an earlier one. The waiter is answered from
// a posted finish_group(), never from inside a grant: finish_load() is still
// granting that entry to its other waiters, and a failed group evicts what it
// loaded.
//
// An acquire with wait_ms waits for room as a file's does: behind the
// acquires already waiting, and again whenever a try fails for room (its
// references dropped meanwhile, so two groups never hold room from each
// other), until its deadline.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>

#include "broker/server/log_text.hpp"
#include "broker/server/service.hpp"
#include "shm/protocol/frame.hpp"
#include "shm/protocol/hot_path.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {

namespace asio = boost::asio;

const HfCache* Service::hf_cache() {
  if (hf_) return &*hf_;
  // Opened when first needed and retried while it is missing: a cache that
  // appears after the broker started is served from then on.
  const std::string root = config_.hf_cache.empty() ? default_hf_cache() : config_.hf_cache;
  if (root.empty()) return nullptr;
  auto opened = HfCache::open(root);
  if (!opened.ok()) return nullptr;
  hf_.emplace(std::move(opened).value());
  resolver_.set_hf(&*hf_);
  spdlog::info("Hugging Face cache: {}", log_text(root));
  return &*hf_;
}

const Service::GroupInfo* Service::find_group(std::string_view model) const {
  auto it = groups_.find(model);
  return it == groups_.end() ? nullptr : &it->second;
}

Result<Service::PlanPtr> Service::plan_for(const std::string& model, const std::string& path) {
  if (auto it = plans_.find(model); it != plans_.end()) {
    if (it->second.path == path && it->second.plan->stamp() == it->second.stamp &&
        std::chrono::steady_clock::now() < it->second.expires) {
      return it->second.plan;
    }
    plans_.erase(it);
  }
  const HfCache* hf = is_hf_name(path) ? hf_cache() : nullptr;
  RepositoryLimits limits;
  limits.max_small_file = config_.repo_max_small_file;
  const std::int64_t started = now_ns();
  auto planned = plan_group(model, path, names_, hf, limits);
  if (!planned.ok()) return planned.status();
  if (!*planned) return PlanPtr();
  auto plan = std::make_shared<const GroupPlan>(std::move(**planned));
  // Kept only when nothing it was read from changed after the reading began
  // (with a margin for the coarse clock of file times): a change made while
  // it was read, after the read and before the stamp, would otherwise be
  // missed for good (git's racily clean index entries).
  std::int64_t newest = 0;
  std::string stamp = plan->stamp(&newest);
  constexpr std::int64_t kClockMarginNs = 20'000'000;
  if (newest < started - kClockMarginNs) {
    if (plans_.size() >= 1024) plans_.clear();
    plans_[model] = CachedPlan{path, std::move(stamp), plan};
  }
  return plan;
}

bool Service::serve_group(const std::string& model, Waiter& w,
                          std::chrono::steady_clock::time_point wait_until, bool queued) {
  if (pool_.find_current(model) != nullptr) return false;  // a file of that name is in the pool
  const Resolution r = resolver_.resolve(model);
  auto plan = plan_for(model, r.path);
  if (plan.ok() && !*plan) return false;  // one file: served as one
  if (shutting_down_) {
    fail(w, error(ErrorCode::kShuttingDown, "the broker is shutting down"));
    return true;
  }
  if (!plan.ok()) {
    const ErrorCode code = plan.status().code();
    const bool missing = code == ErrorCode::kNotFound || code == ErrorCode::kInvalidName;
    const std::string asked = origin_name(model);
    if (missing && origins_ != nullptr && origins_->may_serve(asked, manifest_origin(model))) {
      return false;  // one file, from an origin
    }
    if (code == ErrorCode::kNotFound && origins_ != nullptr && origins_->has_hub() &&
        is_hf_name(asked)) {
      // A repository no local cache has: its plan comes from the hub.
      auto name = parse_hf_name(asked);
      if (name.ok()) {
        std::vector<Waiter>& waiters = hub_plans_[model];
        waiters.push_back(std::move(w));
        if (waiters.size() > 1) return true;  // joins the planning in flight
        RepositoryLimits limits;
        limits.max_small_file = config_.repo_max_small_file;
        origins_->plan_hub(*name, limits, [this, model, path = asked](Result<HubSnapshot> snap) {
          auto shared = std::make_shared<Result<HubSnapshot>>(std::move(snap));
          asio::post(io_, [this, model, path, shared] {
            finish_hub_plan(model, path, std::move(*shared));
          });
        });
        return true;
      }
    }
    fail(w, plan.status());
    return true;
  }
  if (!queued && wait_until > std::chrono::steady_clock::now() && !room_.empty() &&
      !group_resident(**plan)) {
    // Acquires already wait for room: it waits behind them (arrival order).
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(wait_until - std::chrono::steady_clock::now());
    queue_for_room(model, std::move(w), static_cast<std::uint64_t>(left.count()), true, wait_until);
    serve_room_waiters();
    return true;
  }
  start_group(model, std::move(*plan), w, wait_until);
  return true;
}

Status Service::serve_queued_group(RoomWaiter& w) {
  if (shutting_down_) return error(ErrorCode::kShuttingDown, "the broker is shutting down");
  auto plan = plan_for(w.model, resolver_.resolve(w.model).path);
  if (plan.ok() && *plan && !group_fits(**plan)) {
    return error(ErrorCode::kPoolFull, "no room yet for \"" + w.model + "\"");
  }
  if (!serve_group(w.model, w.waiter, w.until, true)) return start_or_join(w.model, w.waiter);
  return {};
}

bool Service::group_resident(const GroupPlan& p) const {
  for (const GroupMember& m : p.members) {
    if (pool_.find_current(m.entry) == nullptr) return false;
  }
  return true;
}

bool Service::group_fits(const GroupPlan& p) const {
  std::uint64_t need = 0;
  std::vector<EntryId> keep;  // resident members: the group holds them, they make no room
  for (const GroupMember& m : p.members) {
    if (const EntryInfo* e = pool_.find_current(m.entry); e != nullptr) {
      keep.push_back(e->base != 0 ? e->base : e->id);
    } else {
      need += pool_.footprint_for(m.size);
    }
  }
  return need == 0 || need <= pool_.room_in_budget(keep, now_ns());
}

void Service::wait_again(GroupJob& job) {
  // What it loaded stays: idle and evictable, a head start for the next try.
  for (const auto& got : job.got) {
    if (got) forget(store_.release_ref(got->id));
  }
  after_release();
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(job.wait_until -
                                                                 std::chrono::steady_clock::now());
  spdlog::debug("{}: {}; waiting up to {} ms for room", log_text(job.plan->name),
                log_text(job.failure.message()), left.count());
  queue_for_room(job.plan->name, std::move(job.waiter),
                 static_cast<std::uint64_t>(std::max<std::int64_t>(left.count(), 1)), true,
                 job.wait_until);
}

void Service::finish_hub_plan(const std::string& model, const std::string& path,
                              Result<HubSnapshot> snapshot) {
  auto node = hub_plans_.extract(model);
  if (node.empty()) return;
  std::vector<Waiter> waiters = std::move(node.mapped());
  if (!snapshot.ok()) {
    for (Waiter& w : waiters) fail(w, snapshot.status());
    return;
  }
  auto name = parse_hf_name(path);
  auto plan = std::make_shared<const GroupPlan>(
      hf_group_plan(model, name->repo, snapshot->commit, std::move(snapshot->files)));
  // A branch or tag may move on the hub: asked again after a while. A
  // commit cannot.
  constexpr auto kRevisionTtl = std::chrono::seconds(60);
  const bool pinned_commit = name->revision == snapshot->commit;
  if (plans_.size() >= 1024) plans_.clear();
  plans_[model] = CachedPlan{path, "", plan,
                             pinned_commit ? std::chrono::steady_clock::time_point::max()
                                           : std::chrono::steady_clock::now() + kRevisionTtl};
  spdlog::info("{}: commit {} on the hub, {} files", log_text(model), snapshot->commit,
               plan->members.size());
  for (Waiter& w : waiters) {
    if (shutting_down_) {
      fail(w, error(ErrorCode::kShuttingDown, "the broker is shutting down"));
      continue;
    }
    start_group(model, plan, w);
  }
}

void Service::start_group(const std::string& model, PlanPtr p, Waiter& w,
                          std::chrono::steady_clock::time_point wait_until) {
  const PoolConfig& pc = pool_.config();
  std::uint64_t footprint = 0;
  for (const GroupMember& m : p->members) footprint += pool_.footprint_for(m.size);
  if (footprint > pc.budget) {
    fail(w, error(ErrorCode::kTooLarge,
                  "\"" + model + "\"" + " needs " + units::format_bytes(footprint) + " for its " +
                      std::to_string(p->members.size()) + " files, more than the pool's budget (" +
                      units::format_bytes(pc.budget) + ")"));
    return;
  }
  const std::uint64_t id = next_group_job_++;
  GroupJob& job = group_jobs_[id];
  job.waiter = std::move(w);
  job.wait_until = wait_until;
  job.got.resize(p->members.size());
  job.fresh.resize(p->members.size());
  job.plan = std::move(p);
  const std::size_t n = job.plan->members.size();
  for (std::size_t i = 0; i < n; ++i) {
    GroupJob& j = group_jobs_.at(id);  // member_done() below may not erase it, but may rehash
    if (!j.failure.ok()) break;
    ++j.pending;
    Waiter mw{j.waiter.session,
              nullptr,
              Waiter::Kind::kMember,
              false,
              nullptr,
              {},
              [this, id, i](const Status& st, const EntryInfo* e, bool cached) {
                member_done(id, i, st, e, cached);
              }};
    const std::string& entry = j.plan->members[i].entry;
    if (Status st = start_or_join(entry, mw); !st.ok()) member_done(id, i, st, nullptr, false);
  }
  GroupJob& j = group_jobs_.at(id);
  j.starting = false;
  if (j.pending == 0) asio::post(io_, [this, id] { finish_group(id); });
}

void Service::member_done(std::uint64_t job, std::size_t i, const Status& st, const EntryInfo* e,
                          bool cached) {
  auto it = group_jobs_.find(job);
  if (it == group_jobs_.end()) {  // cannot happen: a job lives until its last member answers
    if (e != nullptr) forget(store_.release_ref(e->id));
    return;
  }
  GroupJob& j = it->second;
  if (e != nullptr) {
    j.got[i] = *e;
    j.fresh[i] = !cached;
  } else if (j.failure.ok()) {
    const GroupMember& m = j.plan->members[i];
    j.failure = Status(st.code(), j.plan->name + ": " + m.file + ": " + st.message());
  }
  if (--j.pending == 0 && !j.starting) asio::post(io_, [this, job] { finish_group(job); });
}

void Service::finish_group(std::uint64_t id) {
  auto node = group_jobs_.extract(id);
  if (node.empty()) return;
  GroupJob& job = node.mapped();
  if (job.failure.ok()) {
    for (const auto& got : job.got) {
      if (!got) job.failure = error(ErrorCode::kInternal, job.plan->name + ": a file went missing");
    }
  }
  if (job.failure.ok()) job.failure = check_group(job);
  if (job.failure.code() == ErrorCode::kPoolFull && job.waiter.kind == Waiter::Kind::kAcquire &&
      job.wait_until > std::chrono::steady_clock::now() && !shutting_down_) {
    wait_again(job);
    return;
  }
  if (!job.failure.ok()) {
    fail_group(job, job.failure);
    return;
  }
  bool cached = true;
  for (bool f : job.fresh) cached = cached && !f;
  GroupInfo& info = groups_[job.plan->name];
  info.plan = job.plan;
  ++info.accesses;
  grant_group(job, cached);
}

Status Service::check_group(const GroupJob& job) {
  std::string key;
  std::vector<PlacedFile> placed;
  for (std::size_t i = 0; i < job.got.size(); ++i) {
    const EntryInfo& e = *job.got[i];
    key += std::to_string(e.id) + ",";
    if (job.plan->members[i].weights) {
      placed.push_back(PlacedFile{&job.plan->members[i], e.offset, e.size, e.format});
    }
  }
  if (auto hit = group_checks_.find(key); hit != group_checks_.end()) return hit->second;
  Status st = check_group_tensors(*job.plan, segment_.fd(), placed);
  if (group_checks_.size() >= 4096) group_checks_.clear();  // ids of evicted entries pile up
  group_checks_.emplace(std::move(key), st);
  return st;
}

void Service::fail_group(GroupJob& job, const Status& why) {
  spdlog::warn("{}", log_text(why.message()));
  for (std::size_t i = 0; i < job.got.size(); ++i) {
    if (!job.got[i]) continue;
    forget(store_.release_ref(job.got[i]->id));
    // What this acquire loaded goes again (unless someone else uses it).
    if (job.fresh[i]) {
      if (auto gone = store_.evict(job.got[i]->name); gone.ok()) forget({*gone});
    }
  }
  fail(job.waiter, why);
  after_release();
}

void Service::grant_group(GroupJob& job, bool cached) {
  auto release_all = [&] {
    for (const auto& got : job.got) forget(store_.release_ref(got->id));
    after_release();
  };
  Waiter& w = job.waiter;
  const GroupPlan& plan = *job.plan;
  std::uint64_t size = 0;
  for (const auto& got : job.got) size += got->size;
  if (w.kind == Waiter::Kind::kPreload || w.kind == Waiter::Kind::kLoad) {
    if (w.pin) {
      for (const auto& got : job.got) (void)store_.set_pinned(got->name, true);
    }
    if (w.kind == Waiter::Kind::kPreload) {
      if (w.done) w.done(Status());
    } else if (SessionPtr s = w.session.lock(); s && !s->closed()) {
      nlohmann::json reply = {{"model", plan.name},
                              {"size", size},
                              {"files", plan.members.size()},
                              {"cached", cached},
                              {"pinned", w.pin}};
      if (!plan.commit.empty()) reply["commit"] = plan.commit;
      s->reply_ok(w.id, reply);
    }
    release_all();
    return;
  }
  SessionPtr s = w.session.lock();
  if (!s || s->closed()) {
    release_all();
    return;
  }
  if (s->handles().size() >= config_.max_handles_per_client) {
    s->reply_error(w.id, handles_cap_error());
    release_all();
    return;
  }
  // The top-level extent is the first weights file's (a client that knows
  // one file reads that one); `files` lists them all.
  std::size_t top = 0;
  for (std::size_t i = 0; i < plan.members.size(); ++i) {
    if (plan.members[i].weights) {
      top = i;
      break;
    }
  }
  const EntryInfo& first = *job.got[top];
  proto::AcquireReply r{next_handle_,
                        plan.name,
                        first.offset,
                        first.size,
                        first.generation,
                        first.checksum,
                        std::string(layout::to_string(first.format)),
                        cached,
                        {},
                        plan.commit};
  for (std::size_t i = 0; i < plan.members.size(); ++i) {
    const EntryInfo& e = *job.got[i];
    r.files.push_back(proto::FileRef{plan.members[i].file, e.offset, e.size, e.generation,
                                     e.checksum, std::string(layout::to_string(e.format)),
                                     plan.members[i].weights});
  }
  std::string reply = proto::encode_acquire_reply(w.id, r);
  if (reply.size() > proto::kMaxFrame) {
    s->reply_error(w.id,
                   error(ErrorCode::kBadRequest, "the acquire reply for \"" + plan.name + "\"" +
                                                     " would exceed the frame limit (" +
                                                     std::to_string(reply.size()) + " bytes)"));
    release_all();
    return;
  }
  if (cached) {
    ++stats_.hits;
  } else {
    ++stats_.misses;
  }
  const std::uint64_t h = next_handle_++;
  Handle held{{}, s->id(), plan.name};
  for (const auto& got : job.got) held.entries.push_back(got->id);
  handles_[h] = std::move(held);
  ++groups_[plan.name].refs;
  s->handles().insert(h);
  spdlog::debug("{} acquired {} ({} files) as handle {}", s->describe(), log_text(plan.name),
                plan.members.size(), h);
  s->send(std::move(reply));
  stats_.record_acquire(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - w.asked).count());
}

}  // namespace modelpool::broker
