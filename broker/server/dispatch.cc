// File: broker/server/dispatch.cc
#include "broker/server/dispatch.hpp"

#include <spdlog/spdlog.h>

#include <string_view>
#include <unordered_map>

#include "broker/server/log_text.hpp"
#include "broker/server/report_json.hpp"
#include "shm/protocol/hot_path.hpp"
#include "shm/protocol/messages.hpp"

namespace modelpool::broker {

using nlohmann::json;

namespace {

struct Ctx {
  Service& service;
  const Config& config;
  std::size_t clients;
  const SessionPtr& s;
  const proto::Request& req;
};

using Handler = void (*)(Ctx&);
struct Op {
  Handler handler;
  bool admin;
};

// Replies with `r`'s value, encoded, or its error.
template <typename T>
void answer(Ctx& c, const Result<T>& r) {
  if (r.ok()) {
    c.s->reply_ok(c.req.id, to_json(r.value()));
  } else {
    c.s->reply_error(c.req.id, r.status());
  }
}

Result<proto::ModelRequest> model_request(Ctx& c) {
  return proto::decode_model_request(c.req.body);
}

void op_hello(Ctx& c) {
  auto ring = proto::get_opt_bool(c.req.body, "release_ring");
  if (!ring.ok()) return c.s->reply_error(c.req.id, ring.status());
  json fields = proto::to_json(c.service.hello());
  // A ring is for a worker's releases; without one (admin socket, or it
  // cannot be sent now) the reply says nothing and releases come as frames.
  if (ring->value_or(false) && !c.s->admin() &&
      c.s->reply_ok_with_ring(c.req.id, fields, c.service.release_wake())) {
    if (c.s->has_ring()) c.service.add_ring(c.s);
    return;
  }
  c.s->reply_ok(c.req.id, std::move(fields));
}

// The worker saw its ring's wake flag after a push. Every request takes the
// ring's releases first (Dispatcher::handle), so there is nothing left to do.
void op_flush(Ctx& /*c*/) {}

void op_acquire(Ctx& c) {
  auto r = proto::decode_acquire_request(c.req.body);
  if (!r.ok()) return c.s->reply_error(c.req.id, r.status());
  c.service.acquire(c.s, c.req.id, *r);
}

void op_release(Ctx& c) {
  auto r = proto::decode_release_request(c.req.body);
  if (!r.ok()) return c.s->reply_error(c.req.id, r.status());
  c.service.release(*c.s, c.req.id, r->handle, r->reply);
}

void op_load(Ctx& c) {
  auto r = model_request(c);
  if (!r.ok()) return c.s->reply_error(c.req.id, r.status());
  c.service.load(c.s, c.req.id, *r);
}

void op_evict(Ctx& c) {
  auto r = model_request(c);
  if (!r.ok()) return c.s->reply_error(c.req.id, r.status());
  answer(c, c.service.evict(r->model));
}

void op_pin(Ctx& c) {
  auto r = model_request(c);
  if (!r.ok()) return c.s->reply_error(c.req.id, r.status());
  answer(c, c.service.set_pinned(r->model, true));
}

void op_unpin(Ctx& c) {
  auto r = model_request(c);
  if (!r.ok()) return c.s->reply_error(c.req.id, r.status());
  answer(c, c.service.set_pinned(r->model, false));
}

void op_clear(Ctx& c) { c.s->reply_ok(c.req.id, to_json(c.service.clear())); }

void op_stats(Ctx& c) {
  json j = to_json(c.service.stats(c.clients));
  // Keep the reply inside one frame: drop per-model rows past what fits.
  if (j.dump().size() > proto::kMaxFrame - 1024) {
    json& rows = j["models"];
    const std::size_t total = rows.size();
    while (!rows.empty() && j.dump().size() > proto::kMaxFrame - 1024) {
      rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(rows.size() / 2), rows.end());
    }
    j["models_truncated"] = true;
    j["models_total"] = total;
  }
  c.s->reply_ok(c.req.id, std::move(j));
}

void op_list(Ctx& c) {
  json rows = to_json(c.service.list());
  auto offset = proto::get_opt_uint(c.req.body, "offset");
  auto limit = proto::get_opt_uint(c.req.body, "limit");
  if (!offset.ok()) return c.s->reply_error(c.req.id, offset.status());
  if (!limit.ok()) return c.s->reply_error(c.req.id, limit.status());
  const std::size_t total = rows.size();
  // Both numbers are the client's: clamp each before adding (a limit of
  // 2^64-1 must not wrap begin + limit around to below begin).
  const std::size_t begin = std::min<std::uint64_t>(offset->value_or(0), total);
  std::size_t end = begin + std::min<std::uint64_t>(limit->value_or(total), total - begin);
  json page(rows.begin() + static_cast<std::ptrdiff_t>(begin),
            rows.begin() + static_cast<std::ptrdiff_t>(end));
  while (!page.empty() && json{{"models", page}}.dump().size() > proto::kMaxFrame - 1024) {
    page.erase(page.begin() + static_cast<std::ptrdiff_t>(page.size() / 2), page.end());
  }
  end = begin + page.size();
  json reply = {{"models", std::move(page)}, {"total", total}, {"offset", begin}};
  if (end < total) reply["next_offset"] = end;
  c.s->reply_ok(c.req.id, std::move(reply));
}

void op_health(Ctx& c) {
  c.s->reply_ok(c.req.id, {{"status", c.service.shutting_down() ? "stopping" : "ok"},
                           {"pool", c.config.pool},
                           {"pid", static_cast<std::int64_t>(::getpid())},
                           {"uptime_s", c.service.uptime_s()}});
}

// Effective values: the budget (--memory) and the metrics address are the
// ones in effect (main writes them back), and max-model-size 0 means "the
// budget", so the budget is shown.
void op_config(Ctx& c) {
  nlohmann::json config = to_json(c.config);
  if (c.config.policy.max_model_size == 0) config["max-model-size"] = c.config.policy.budget;
  c.s->reply_ok(c.req.id, {{"config", std::move(config)}});
}

void op_selfcheck(Ctx& c) { c.s->reply_ok(c.req.id, to_json(c.service.selfcheck())); }

const std::unordered_map<std::string_view, Op>& op_table() {
  static const std::unordered_map<std::string_view, Op> kOps = {
      {"hello", {op_hello, false}},        {"acquire", {op_acquire, false}},
      {"release", {op_release, false}},    {"load", {op_load, true}},
      {"evict", {op_evict, true}},         {"pin", {op_pin, true}},
      {"unpin", {op_unpin, true}},         {"clear", {op_clear, true}},
      {"stats", {op_stats, true}},         {"list", {op_list, true}},
      {"health", {op_health, true}},       {"config", {op_config, true}},
      {"selfcheck", {op_selfcheck, true}}, {"flush", {op_flush, false}},
  };
  return kOps;
}

}  // namespace

Dispatcher::Dispatcher(Service& service, const Config& config,
                       std::function<std::size_t()> client_count)
    : service_(service), config_(config), client_count_(std::move(client_count)) {}

void Dispatcher::handle(const SessionPtr& s, std::string_view payload) {
  // Releases pushed to the ring before this request count before it.
  service_.collect_releases(*s);
  if (s->closed() || s->closing()) return;
  // A worker's warm acquire and release, read without building a DOM; any
  // other payload, well-formed or not, takes the general path below.
  if (auto hot = proto::parse_hot_request(payload)) {
    const json id = hot->id ? json(*hot->id) : json(nullptr);
    const bool acquire = hot->op == proto::HotRequest::Op::kAcquire;
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("{} -> {}", s->describe(), acquire ? "acquire" : "release");
    }
    if (acquire) {
      service_.acquire(s, id, hot->acquire);
    } else {
      service_.release(*s, id, hot->release.handle, hot->release.reply);
    }
    return;
  }
  auto req = proto::decode_request(payload);
  if (!req.ok()) {
    spdlog::warn("{} sent a bad request: {}", s->describe(), log_text(req.status().message()));
    // The id cannot be trusted when the frame did not parse; echo null.
    s->reply_error(nullptr, req.status());
    return;
  }
  const auto& table = op_table();
  auto it = table.find(req->op);
  if (it == table.end()) {
    spdlog::warn("{} sent unknown op \"{}\"", s->describe(), log_text(req->op));
    s->reply_error(req->id, error(ErrorCode::kUnknownOp, "unknown op \"" + req->op + "\""));
    return;
  }
  if (it->second.admin && !s->admin()) {
    spdlog::warn("{} sent admin op \"{}\" on the worker socket", s->describe(), log_text(req->op));
    s->reply_error(req->id, error(ErrorCode::kForbidden,
                                  "op \"" + req->op + "\" is only allowed on the admin socket"));
    return;
  }
  if (spdlog::should_log(spdlog::level::debug))
    spdlog::debug("{} -> {}", s->describe(), log_text(req->op));
  if (it->second.admin) service_.collect_all_releases();  // what it reads or does sees them
  Ctx ctx{service_, config_, client_count_(), s, *req};
  it->second.handler(ctx);
}

}  // namespace modelpool::broker
