// File: broker/server/service.hpp
//
// The broker's behaviour behind the control channel: it ties the pool and
// its segment (CatalogStore), the loader (Loader) and name resolution
// together. Acquires of a cold model share one load; every waiter
// gets its result. Handles are owned by sessions and dropped on release or
// disconnect. Runs on the event-loop thread only; loads run on loader
// threads and report back through the io_context.
#ifndef MODELPOOL_BROKER_SERVER_SERVICE_HPP_
#define MODELPOOL_BROKER_SERVER_SERVICE_HPP_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/config.hpp"
#include "broker/manifest.hpp"
#include "broker/origin/hub_repository.hpp"
#include "broker/pool/pool.hpp"
#include "broker/server/reports.hpp"
#include "broker/server/resolution.hpp"
#include "broker/server/room_queue.hpp"
#include "broker/server/session.hpp"
#include "broker/server/stats.hpp"
#include "broker/store/catalog_store.hpp"
#include "broker/store/group_plan.hpp"
#include "broker/store/hf_cache.hpp"
#include "broker/store/loader.hpp"
#include "broker/store/segment.hpp"
#include "shm/protocol/messages.hpp"

namespace modelpool::broker {

class Service {
 public:
  Service(boost::asio::io_context& io, const Config& config, CatalogStore& store,
          LoadRunner& loader, NameResolver& names);

  // Worker ops.
  proto::HelloReply hello() const;
  void acquire(const SessionPtr& s, const nlohmann::json& id, const proto::AcquireRequest& req);
  // With `reply` false nothing is sent back, not even an error (it is logged).
  void release(Session& s, const nlohmann::json& id, std::uint64_t handle, bool reply);
  void disconnect(Session& s);

  // Release rings (shm/protocol/release_ring.hpp). `s` now has one; it is
  // read from here on. release_wake(): whether rings ask for flush frames
  // (acquires wait for room), which a new ring starts with.
  void add_ring(const SessionPtr& s);
  bool release_wake() const { return release_wake_; }
  // Takes the releases waiting in `s`'s ring (before each of its requests).
  void collect_releases(Session& s);
  // ... in every ring: before anything that reads or acts on references
  // (admin requests, metrics, a load that may evict).
  void collect_all_releases();

  // Admin ops. `load` replies when the model is resident (or failed).
  void load(const SessionPtr& s, const nlohmann::json& id, const proto::ModelRequest& req);
  // They return plain values (reports.hpp); the dispatcher encodes them.
  Result<Evicted> evict(std::string_view model);
  Result<PinState> set_pinned(std::string_view model, bool pinned);
  Cleared clear();
  StatsReport stats(std::size_t clients) const;
  std::vector<ModelRow> list() const;
  SelfCheck selfcheck() const;
  double uptime_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }

  // Loads `model` without a client (preload at start); `done` gets the outcome.
  void preload(const std::string& model, bool pin, std::function<void(const Status&)> done);

  // Remote origins and the disk tier (null: none). Set before serving.
  void set_origins(Origins* origins) { origins_ = origins; }
  const Origins* origins() const { return origins_; }

  // The manifest in force (nullptr: names are paths). Swapped on SIGHUP.
  void set_manifest(std::shared_ptr<const Manifest> m) { resolver_.set_manifest(std::move(m)); }
  const Manifest* manifest() const { return resolver_.manifest(); }

  std::size_t loads_in_flight() const { return inflight_.size(); }
  // Called when the last in-flight load finishes (for shutdown).
  void on_idle(std::function<void()> cb) { idle_cb_ = std::move(cb); }
  // Refuses new work from now on and answers every acquire still waiting
  // for room with shutting_down (loads in flight finish and are answered).
  void set_shutting_down();
  bool shutting_down() const { return shutting_down_; }

 private:
  // Who waits for a load: a worker acquire, an admin load, or a preload.
  struct Waiter {
    std::weak_ptr<Session> session;
    nlohmann::json id;
    // kMember: one file of a model of several files (service_group.cc).
    enum class Kind { kAcquire, kLoad, kPreload, kMember } kind = Kind::kAcquire;
    bool pin = false;
    std::function<void(const Status&)> done;  // kPreload
    // kAcquire: when the request arrived (modelpool_acquire_seconds).
    std::chrono::steady_clock::time_point asked{};
    // kMember: told the outcome; when granted, a reference on the entry is
    // taken first and is the callee's to release.
    std::function<void(const Status&, const EntryInfo*, bool cached)> member;
  };
  // Counts one acquire in its session's room_waits() for as long as it
  // lives, however its RoomWaiter leaves the queue (served, timed out,
  // shut down, connection gone).
  class RoomWaitCount {
   public:
    explicit RoomWaitCount(const SessionPtr& s) : session_(s) { ++s->room_waits(); }
    RoomWaitCount(RoomWaitCount&& o) noexcept : session_(std::move(o.session_)) {
      o.session_.reset();
    }
    RoomWaitCount& operator=(RoomWaitCount&& o) noexcept {
      if (this != &o) {
        drop();
        session_ = std::move(o.session_);
        o.session_.reset();
      }
      return *this;
    }
    RoomWaitCount(const RoomWaitCount&) = delete;
    RoomWaitCount& operator=(const RoomWaitCount&) = delete;
    ~RoomWaitCount() { drop(); }

   private:
    void drop() {
      if (SessionPtr s = session_.lock()) --s->room_waits();
      session_.reset();
    }
    std::weak_ptr<Session> session_;
  };
  // An acquire waiting for room (wait_ms), in room_ (arrival order).
  struct RoomWaiter {
    std::string model;
    Waiter waiter;
    RoomWaitCount counted;
    bool group = false;  // a model of several files, served by serve_queued_group()
    std::chrono::steady_clock::time_point until{};  // a group's deadline, for its next try
  };
  struct Inflight {
    ResolvedFile file;
    std::vector<Waiter> waiters;
    std::vector<std::pair<std::string, Waiter>> retry;  // want a newer version of the file
    std::string sha256;                                 // the manifest's, checked by the load
    bool pin = false;                                   // the manifest pins it once ready
    std::shared_ptr<FetchProgress> progress;            // a download from an origin
    bool content_checked = false;  // compared with a resident entry of the same checksum
  };
  struct Handle {
    std::vector<EntryId> entries;  // one reference on each (several: a model of several files)
    std::uint64_t session;
    std::string group;  // the model of several files it holds, or ""
  };
  // A model of several files being gathered for one waiter: a reference on
  // each member is taken as it is granted (so that loading a later member
  // cannot evict an earlier one), and the waiter is answered once all are in.
  using PlanPtr = std::shared_ptr<const GroupPlan>;  // plans are shared, never changed
  struct GroupJob {
    PlanPtr plan;
    Waiter waiter;
    std::vector<std::optional<EntryInfo>> got;  // per member, once granted (ref held)
    std::vector<bool> fresh;                    // per member: loaded for this job
    std::size_t pending = 0;                    // members started and not answered
    bool starting = true;                       // still starting members
    Status failure;
    // An acquire with wait_ms: until when a failure for room waits for room
    // and tries again, rather than being the answer.
    std::chrono::steady_clock::time_point wait_until{};
  };
  // What a model of several files stands for, as it was last served: the
  // pool entries of its files, for list, pin, evict and the references its
  // handles hold.
  struct GroupInfo {
    PlanPtr plan;  // its commit and members
    std::size_t refs = 0;
    std::uint64_t accesses = 0;
  };

  // The request's one resolution of `model` (resolution.hpp): the warm
  // path, or the releases waiting in rings taken and the source opened.
  Resolution resolve(const std::string& model);
  // Grants `w` its model, joins it to the load in flight, or starts one.
  // kPoolFull when the pool has no room (the caller may queue a RoomWaiter).
  Status start_or_join(const std::string& model, Waiter w);
  Status start_or_join(Resolution r, Waiter w);
  void start_load(const EntryInfo& entry, Resolution resolved, Waiter w);
  void finish_load(EntryId id, Result<LoadResult> result, layout::Format format);
  // Ends the load of `id`: READY, or (`same_as` != 0) an alias of that
  // entry, whose bytes it was found to hold; failed when `result` is an error.
  void settle_load(EntryId id, Result<LoadResult> result, layout::Format format, EntryId same_as);
  // One copy per content (service_dedup.cc): when a resident entry has the
  // same size, checksum and format as the loaded `id`, their bytes are
  // compared off the event loop and the load settles as its alias if they
  // are equal. False when there is nothing to compare (settle now).
  bool check_content(EntryId id, const LoadResult& result, layout::Format format);
  void grant(const EntryInfo& e, Waiter& w, bool cached);
  // True when `r`'s name may share `twin`'s copy (the same file): the format
  // its name promises and its manifest sha256, if any, are what `twin`'s
  // bytes were checked against.
  bool may_share(const EntryInfo& twin, const Resolution& r) const;
  // Pins or unpins the current entry `e` of its name, in the pool and in the
  // catalog slot of its bytes (which carries their pin through any name).
  void pin(const EntryInfo& e, bool pinned);
  void fail(Waiter& w, const Status& status);
  // pool_full naming --max-handles-per-client.
  Status handles_cap_error() const;
  // Entries the store freed (their bytes are gone): logged, and what the
  // service keeps about them dropped.
  void forget(const std::vector<EntryInfo>& freed);
  // Entries retained because a worker still maps them (Pool::reap) are
  // looked at again every kReapInterval while there are any.
  void schedule_reap();
  void drop_handle(std::uint64_t handle);
  // Drops `handle` if `s` holds it; else answers stale_handle (or logs it,
  // without `reply`). True when dropped.
  bool take_handle(Session& s, const nlohmann::json& id, std::uint64_t handle, bool reply);
  // After references dropped: the watermark, then acquires waiting for room.
  void after_release();
  // Handles released through `s`'s ring since the last call; a corrupt ring
  // closes the connection.
  std::size_t take_ring_releases(Session& s);
  // Raises or lowers `wake` in every ring as acquires start or stop waiting
  // for room; raising it is followed by a collection (see release_ring.hpp).
  void update_release_wake();
  void queue_for_room(const std::string& model, Waiter w, std::uint64_t wait_ms, bool group = false,
                      std::chrono::steady_clock::time_point until = {});
  void serve_room_waiters();
  // What serving, failing and timing out a RoomWaiter mean.
  RoomQueue<RoomWaiter>::Hooks room_hooks();
  // One timer for the earliest deadline in room_.
  void arm_room_timer();
  // True when acquires already wait for room and `r` would be a new load
  // that can fit at all: it queues behind them rather than overtaking them.
  bool must_queue_behind(const Resolution& r) const;
  std::int64_t now_ns() const;

  // Models of several files (service_group.cc). serve_group() answers `w`
  // and returns true when `model` is one (a repository, an hf: snapshot, a
  // GGUF split set), else returns false and leaves `w` to the caller.
  // `wait_until` (an acquire's wait_ms) lets it wait for room; `queued`: it
  // is served from the room queue, where it already waited its turn.
  bool serve_group(const std::string& model, Waiter& w,
                   std::chrono::steady_clock::time_point wait_until = {}, bool queued = false);
  // A group's turn in the room queue: kPoolFull (it keeps its place) while
  // the budget has no room for the files it still needs, else started.
  Status serve_queued_group(RoomWaiter& w);
  // True when the budget has room for the members of `p` not in the pool.
  bool group_fits(const GroupPlan& p) const;
  // True when every member of `p` has a current entry (READY or LOADING).
  bool group_resident(const GroupPlan& p) const;
  // The job failed for room and may wait: its references go (what it loaded
  // stays, idle), and its waiter queues for room until its deadline.
  void wait_again(GroupJob& job);
  void member_done(std::uint64_t job, std::size_t i, const Status& st, const EntryInfo* e,
                   bool cached);
  void finish_group(std::uint64_t job);
  void fail_group(GroupJob& job, const Status& why);
  void grant_group(GroupJob& job, bool cached);
  // The tensors of the group's weights files form one namespace (cached by
  // the member entries checked).
  Status check_group(const GroupJob& job);
  const GroupInfo* find_group(std::string_view model) const;
  const HfCache* hf_cache();

  // Names no local source has, from the origins (service_remote.cc).
  // serve_remote() takes `w` and returns true when `r` is such a name: the
  // waiter joins the search in flight for it, or starts one.
  bool serve_remote(const Resolution& r, Waiter& w);
  // The name an origin is asked for: the manifest's path for `model`, else
  // `model` itself (an hf: name as given: the hub's routes).
  std::string origin_name(const std::string& model) const;
  // The manifest's origin for `model`, asked before --origin's, or "".
  std::string manifest_origin(const std::string& model) const;
  void finish_locate(const std::string& model, Result<Located> where);
  // Starts the download of `resolved.remote` into entry `e`'s extent.
  void start_fetch(const EntryInfo& e, const Resolution& resolved);
  // A load's result on the loader or origin thread (`e`: the entry as it
  // was when the load started, a copy): the format checked, then
  // finish_load() posted to the event loop.
  void on_loaded(const EntryInfo& e, Result<LoadResult> r, const std::string& sha256,
                 const std::string& name);

  boost::asio::io_context& io_;
  const Config& config_;
  CatalogStore& store_;  // every change to the pool and the segment
  const Pool& pool_;     // reads
  const Segment& segment_;
  LoadRunner& loader_;
  NameResolver& names_;
  // The Hugging Face cache, opened at the first hf: name (--hf-cache).
  std::optional<HfCache> hf_;
  Resolver resolver_;
  Origins* origins_ = nullptr;
  // Names being located on the origins, with the waiters for each.
  std::unordered_map<std::string, std::vector<Waiter>> locating_;
  Stats stats_;
  std::unordered_map<EntryId, Inflight> inflight_;
  // Entries whose bytes matched a manifest sha256 at load, with it.
  std::unordered_map<EntryId, std::string> verified_sha256_;
  std::unordered_map<std::uint64_t, Handle> handles_;
  std::unordered_map<std::uint64_t, GroupJob> group_jobs_;
  std::uint64_t next_group_job_ = 1;
  std::map<std::string, GroupInfo, std::less<>> groups_;
  // Plans of models of several files, kept while what they were read from
  // is unchanged (GroupPlan::stamp): a warm acquire of a repository costs a
  // few fstatat, not a directory scan and an index parse.
  // A plan from a hub has no stamp: it is kept until `expires` (for ever
  // when its revision is a commit, which cannot move).
  struct CachedPlan {
    std::string path;  // what the name meant (the manifest's path for it)
    std::string stamp;
    PlanPtr plan;
    std::chrono::steady_clock::time_point expires = std::chrono::steady_clock::time_point::max();
  };
  std::unordered_map<std::string, CachedPlan> plans_;
  // The plan `model` (meaning `path`) stands for now, or null for a file.
  Result<PlanPtr> plan_for(const std::string& model, const std::string& path);
  // Answers `w` with the model of several files `plan` stands for: its files
  // are started, and it is granted once all are in (or failed).
  void start_group(const std::string& model, PlanPtr plan, Waiter& w,
                   std::chrono::steady_clock::time_point wait_until = {});
  // hf:ORG/NAME@REV repositories that are planned on the hub (no local
  // cache has them), with the waiters for each.
  std::unordered_map<std::string, std::vector<Waiter>> hub_plans_;
  void finish_hub_plan(const std::string& model, const std::string& path,
                       Result<HubSnapshot> snapshot);
  // Member entry ids (joined) whose tensors were checked together.
  std::unordered_map<std::string, Status> group_checks_;
  std::uint64_t next_handle_ = 1;
  RoomQueue<RoomWaiter> room_{room_hooks()};
  boost::asio::steady_timer room_timer_;
  bool room_timer_armed_ = false;
  std::chrono::steady_clock::time_point room_timer_at_{};
  boost::asio::steady_timer reap_timer_;
  bool reap_armed_ = false;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> ring_sessions_;  // by session id
  std::vector<std::uint64_t> ring_scratch_;
  bool release_wake_ = false;
  bool collecting_ = false;
  bool shutting_down_ = false;
  std::function<void()> idle_cb_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // Compares the bytes of two entries (check_content). Last: it joins first.
  boost::asio::thread_pool comparer_{1};
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_SERVICE_HPP_
