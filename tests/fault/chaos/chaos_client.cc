// File: tests/fault/chaos/chaos_client.cc
//
// One chaos client process: speaks the wire protocol itself (the client
// library's reconnect is not what is under test here), maps what it
// acquires read-only like a worker, checks every read against the reply's
// checksum and the file's, and survives its broker: it keeps reading its
// mappings while no broker runs (within the grace rule of chaos.hpp),
// reconnects with backoff and re-acquires what it holds.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "chaos.hpp"
#include "chaos_lock.hpp"
#include "fault_support.hpp"

namespace modelpool::chaos {

namespace {

using Clock = std::chrono::steady_clock;
using fault::Conn;
using fault::json;

constexpr std::size_t kMaxHeld = 2;
constexpr auto kReplyTimeout = std::chrono::seconds(10);

struct Held {
  const Model* model;
  std::uint64_t handle = 0, offset = 0, generation = 0, checksum = 0;
  std::unique_ptr<fault::Mapping> map;
  std::unique_ptr<ExtentLock> lock;  // taken after the map, dropped before the release
  std::uint64_t epoch = 0;           // the connection its handle lives on
  Clock::time_point ref_alive{};     // last time that connection's broker was seen alive
};

class ChaosClient {
 public:
  ChaosClient(int index, std::uint64_t seed, std::string socket, const std::vector<Model>& models,
              int grace_s, Shared* shared)
      : index_(index),
        rng_(seed),
        socket_(std::move(socket)),
        models_(models),
        grace_(std::chrono::seconds(grace_s)),
        shared_(shared),
        c_(shared->clients[index]) {}

  void run() {
    while (!shared_->stop.load()) {
      if (!conn_ || conn_->closed()) {
        while_down();
        continue;
      }
      const int dice = std::uniform_int_distribution<int>(0, 99)(rng_);
      if (dice < 40 && !held_.empty()) {
        verify(pick_held());
      } else if (dice < 75 && held_.size() < kMaxHeld) {
        acquire(models_[std::uniform_int_distribution<std::size_t>(0, models_.size() - 1)(rng_)]);
      } else if (!held_.empty()) {
        release(pick_held());
      }
    }
    for (std::size_t i = held_.size(); i-- > 0;) release(i);
  }

 private:
  std::size_t pick_held() {
    return std::uniform_int_distribution<std::size_t>(0, held_.size() - 1)(rng_);
  }

  // A reply, or nullopt when the connection is gone (EOF, reset or timeout).
  std::optional<json> call(const json& req) {
    const auto t0 = Clock::now();
    auto r = conn_->request(req, kReplyTimeout);
    if (!r && Clock::now() - t0 >= kReplyTimeout) c_.timeouts.fetch_add(1);
    if (r) touch(Clock::now());
    return r;
  }

  void wrong(const Held& h, std::uint64_t got, const char* when) {
    c_.wrong_bytes.fetch_add(1);
    char line[512];
    std::snprintf(
        line, sizeof line,
        "client %d: WRONG BYTES %s: %s generation %llu at offset %llu: xxh3 %s, reply %s, "
        "file %s",
        index_, when, h.model->name.c_str(), static_cast<unsigned long long>(h.generation),
        static_cast<unsigned long long>(h.offset), fault::hex16(got).c_str(),
        fault::hex16(h.checksum).c_str(), fault::hex16(h.model->checksum).c_str());
    std::fprintf(stderr, "%s\n", line);
    if (shared_->wrong_reports.fetch_add(1) == 0) {
      std::snprintf(shared_->first_wrong, sizeof shared_->first_wrong, "%s", line);
    }
  }

  // The broker holding the handles of this connection is alive at `now`.
  void touch(Clock::time_point now) {
    for (Held& h : held_) {
      if (h.epoch == epoch_) h.ref_alive = now;
    }
  }

  // Hashes a held mapping; whether the read counts is decided at its end.
  void verify(std::size_t i) {
    Held& h = held_[i];
    const bool on_conn = conn_ && !conn_->closed() && h.epoch == epoch_;
    const std::uint64_t got = h.map->hash();
    const auto end = Clock::now();
    const bool live = on_conn && !conn_->peer_gone();
    if (live) h.ref_alive = end;
    if (!live && end >= h.ref_alive + grace_) return;  // unprotected: not a check
    if (!live) c_.reads_while_down.fetch_add(1);
    c_.checked_reads.fetch_add(1);
    if (got != h.checksum || got != h.model->checksum) wrong(h, got, live ? "held" : "broker down");
  }

  // Keeps Shared::may_hold in step with held_ (plus `m` while it is acquired).
  void publish_held(const Model* m = nullptr) {
    std::uint64_t bits = m != nullptr ? 1ULL << m->index : 0;
    for (const Held& h : held_) bits |= 1ULL << h.model->index;
    shared_->may_hold[index_].store(bits);
  }

  void acquire(const Model& m) {
    publish_held(&m);
    auto r = call({{"op", "acquire"}, {"model", m.name}, {"wait_ms", 50}});
    if (!r) return;  // the bit stays: a reply may have been sent
    if (!r->value("ok", false)) {
      publish_held();
      const std::string code = (*r)["error"].value("code", "");
      (code == "pool_full" ? c_.pool_full : c_.other_errors).fetch_add(1);
      if (code != "pool_full" && code != "shutting_down") {
        std::fprintf(stderr, "client %d: acquire %s: %s\n", index_, m.name.c_str(),
                     r->dump().c_str());
      }
      return;
    }
    c_.acquires.fetch_add(1);
    held_.push_back(adopt_reply(m, *r));
    verify(held_.size() - 1);
  }

  Held adopt_reply(const Model& m, const json& r) {
    Held h{&m,
           r["handle"],
           r["offset"],
           r["generation"],
           std::stoull(r["checksum"].get<std::string>(), nullptr, 16),
           nullptr,
           nullptr,
           epoch_,
           Clock::now()};
    h.map = std::make_unique<fault::Mapping>(segment_, h.offset, m.size);
    // The broker's reference protects the extent until the lock is in place.
    h.lock = std::make_unique<ExtentLock>(segment_, h.offset, m.size);
    return h;
  }

  void release(std::size_t i) {
    held_[i].lock.reset();
    if (conn_ && !conn_->closed()) {
      auto r = call({{"op", "release"}, {"handle", held_[i].handle}});
      if (r && r->value("ok", false)) c_.releases.fetch_add(1);
      if (r && !r->value("ok", false)) {
        c_.other_errors.fetch_add(1);
        std::fprintf(stderr, "client %d: release: %s\n", index_, r->dump().c_str());
      }
    }
    held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
    publish_held();
  }

  // No broker: read while protected, then reconnect and re-acquire.
  void while_down() {
    for (std::size_t i = 0; i < held_.size(); ++i) {
      if (Clock::now() + std::chrono::milliseconds(100) < held_[i].ref_alive + grace_) {
        verify(i);
        break;
      }
    }
    conn_ = std::make_unique<Conn>(socket_);
    ++epoch_;
    std::optional<json> hello;
    if (!conn_->closed()) hello = call({{"op", "hello"}});
    if (!hello || !hello->value("ok", false)) {
      conn_.reset();
      backoff_ = std::min(backoff_ * 2, 50);
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_));
      return;
    }
    backoff_ = 1;
    segment_ = (*hello)["segment_path"];
    if (connected_once_) c_.reconnects.fetch_add(1);
    connected_once_ = true;
    for (std::size_t i = 0; i < held_.size();) {
      if (held_[i].epoch == epoch_) {
        ++i;
        continue;
      }
      if (!reacquire(held_[i])) {
        if (conn_->closed()) return;  // the broker died again: keep the rest for later
        held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
        publish_held();
        c_.dropped_held.fetch_add(1);
        continue;
      }
      ++i;
    }
  }

  bool reacquire(Held& h) {
    auto r = call({{"op", "acquire"}, {"model", h.model->name}, {"wait_ms", 50}});
    if (!r || !r->value("ok", false)) return false;
    const bool same = (*r)["offset"] == h.offset && (*r)["generation"] == h.generation;
    (same ? c_.reacquired_same : c_.reacquired_moved).fetch_add(1);
    h = adopt_reply(*h.model, *r);
    return true;
  }

  const int index_;
  std::mt19937_64 rng_;
  const std::string socket_;
  const std::vector<Model>& models_;
  const Clock::duration grace_;
  Shared* shared_;
  ClientCounters& c_;
  std::unique_ptr<Conn> conn_;
  std::string segment_;
  std::vector<Held> held_;
  std::uint64_t epoch_ = 0;
  bool connected_once_ = false;
  int backoff_ = 1;
};

}  // namespace

pid_t spawn_client(int index, std::uint64_t seed, const std::string& socket_path,
                   const std::vector<Model>& models, int grace_s, Shared* shared) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::close_range(3, ~0U, 0);  // the driver's sockets must not outlive it in a client
  ::signal(SIGPIPE, SIG_IGN);
  shared->clients[index].spawned.fetch_add(1);
  shared->may_hold[index].store(0);  // what a killed predecessor held died with it
  int code = 0;
  try {
    ChaosClient(index, seed, socket_path, models, grace_s, shared).run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "client %d: %s\n", index, e.what());
    shared->clients[index].other_errors.fetch_add(1);
    code = 1;
  }
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace modelpool::chaos
