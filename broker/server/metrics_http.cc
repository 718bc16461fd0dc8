// File: broker/server/metrics_http.cc
#include "broker/server/metrics_http.hpp"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sstream>

namespace modelpool::broker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// The # HELP and # TYPE lines of the family `name`.
void family(std::ostringstream& out, const std::string& name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

// A family of one series without labels.
void metric_named(std::ostringstream& out, const std::string& name, const char* type,
                  const char* help, const json& value) {
  family(out, name, type, help);
  out << name << ' ' << value.dump() << '\n';
}

void metric(std::ostringstream& out, const char* name, const char* type, const char* help,
            const json& value) {
  metric_named(out, std::string("modelpool_") + name, type, help, value);
}

// A histogram from cumulative bucket counts `h` ({"le": [...], "counts": [...]}).
void histogram(std::ostringstream& out, const std::string& name, const char* help, const json& h,
               const json& count, const json& sum) {
  family(out, name, "histogram", help);
  for (std::size_t i = 0; i < h["le"].size(); ++i) {
    out << name << "_bucket{le=\"" << h["le"][i].get<double>() << "\"} " << h["counts"][i].dump()
        << '\n';
  }
  out << name << "_bucket{le=\"+Inf\"} " << count.dump() << '\n'
      << name << "_sum " << sum.dump() << '\n'
      << name << "_count " << count.dump() << '\n';
}

// One series per pool entry: name{model,generation} row[field]. Rows of
// models of several files are left out: their files have rows of their own.
void per_model(std::ostringstream& out, const std::string& name, const char* help,
               const json& models, const char* field) {
  family(out, name, "gauge", help);
  for (const auto& m : models) {
    if (m.contains("file_count")) continue;
    const json& v = m[field];
    const json shown = v.is_boolean() ? json(v.get<bool>() ? 1 : 0) : v;
    out << name << "{model=\"" << escape_label(m["name"].get<std::string>()) << "\",generation=\""
        << m["generation"].dump() << "\"} " << shown.dump() << '\n';
  }
}

// One HTTP exchange, then close. Counted in `open` while it lives; the
// whole exchange must end within `timeout` (the stream closes the socket).
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket s, std::function<json()> stats, std::function<bool()> ready,
              std::shared_ptr<std::size_t> open, std::chrono::milliseconds timeout)
      : stream_(std::move(s)),
        stats_(std::move(stats)),
        ready_(std::move(ready)),
        open_(std::move(open)),
        timeout_(timeout) {
    ++*open_;
  }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;
  ~HttpSession() { --*open_; }
  void start() {
    stream_.expires_after(timeout_);
    http::async_read(stream_, buf_, req_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (!ec) self->respond();
                     });
  }

 private:
  void respond() {
    res_.version(req_.version());
    res_.keep_alive(false);
    const bool head = req_.method() == http::verb::head;
    const auto target = req_.target();
    if (req_.method() != http::verb::get && !head) {
      reply(http::status::method_not_allowed, "only GET and HEAD\n");
      res_.set(http::field::allow, "GET, HEAD");
    } else if (target == "/metrics" || target == "/") {
      reply(http::status::ok, render_prometheus(stats_()),
            "text/plain; version=0.0.4; charset=utf-8");
    } else if (target == "/healthz") {
      reply(http::status::ok, "ok\n");  // the event loop answered
    } else if (target == "/readyz") {
      const bool ready = ready_();
      reply(ready ? http::status::ok : http::status::service_unavailable,
            ready ? "ready\n" : "not ready: starting or stopping\n");
    } else {
      reply(http::status::not_found, "not found; metrics are at /metrics\n");
    }
    res_.prepare_payload();
    if (head) res_.body().clear();  // Content-Length stays what GET would send
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, std::size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }
  void reply(http::status status, std::string body, const char* type = "text/plain") {
    res_.result(status);
    res_.set(http::field::content_type, type);
    res_.body() = std::move(body);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  std::function<json()> stats_;
  std::function<bool()> ready_;
  std::shared_ptr<std::size_t> open_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

std::string render_prometheus(const json& s) {
  std::ostringstream out;
  family(out, "modelpool_build_info", "gauge", "Always 1; the version of modelpoold as a label.");
  out << "modelpool_build_info{version=\"" << escape_label(s.value("version", "")) << "\"} 1\n";
  metric(out, "uptime_seconds", "gauge", "Seconds since the broker started.", s["uptime_s"]);
  metric(out, "hits_total", "counter", "Acquires that needed no new load.", s["hits"]);
  metric(out, "misses_total", "counter", "Acquires that started a load.", s["misses"]);
  metric(out, "acquires_total", "counter", "Acquire requests, granted or not.", s["acquires"]);
  metric(out, "releases_total", "counter",
         "Handles released by their holder (not those dropped with a connection).", s["releases"]);
  metric(out, "loads_total", "counter", "Loads that finished.", s["loads"]);
  metric(out, "load_failures_total", "counter", "Loads that failed.", s["load_failures"]);
  metric(out, "loads_in_flight", "gauge", "Loads started and not finished.", s["loads_in_flight"]);
  metric(out, "acquires_waiting_for_room", "gauge",
         "Acquires (wait_ms) queued until the pool has room.", s["waiting_for_room"]);
  metric(out, "loaded_bytes_total", "counter", "Bytes read into the pool.", s["bytes_loaded"]);
  metric(out, "evictions_total", "counter", "Models evicted.", s["evictions"]);
  metric(out, "evicted_bytes_total", "counter", "Bytes evicted.", s["bytes_evicted"]);
  metric(out, "used_bytes", "gauge",
         "Memory the resident models hold (their sizes in whole pages).", s["bytes_used"]);
  metric(out, "budget_bytes", "gauge", "Memory budget.", s["bytes_budget"]);
  metric(out, "largest_free_extent_bytes", "gauge", "Largest free range of the offset space.",
         s["largest_free_extent"]);
  metric(out, "clients", "gauge", "Connected clients.", s["clients"]);
  metric(out, "handles", "gauge", "Handles held by clients.", s["handles"]);
  metric(out, "models", "gauge", "Model generations in the pool.", s["models"].size());
  metric(out, "mem_total_bytes", "gauge", "MemTotal of the host.", s["mem_total"]);
  metric(out, "mem_available_bytes", "gauge", "MemAvailable of the host.", s["mem_available"]);
  histogram(out, "modelpool_load_seconds", "Seconds each load took.", s["load_histogram"],
            s["loads"], s["load_seconds"]);
  histogram(out, "modelpool_acquire_seconds",
            "Seconds from an acquire request to its grant (a load included).",
            s["acquire_histogram"], s["acquires_granted"], s["acquire_seconds"]);
  per_model(out, "modelpool_model_bytes", "Size of each resident model.", s["models"], "size");
  per_model(out, "modelpool_model_refs", "References held on each model.", s["models"], "refs");
  per_model(out, "modelpool_model_pinned", "1 when the model is pinned (never evicted).",
            s["models"], "pinned");
  if (s.contains("origins")) {
    const json& o = s["origins"];
    metric(out, "origin_requests_total", "counter", "HTTP requests made to origins.",
           o["requests"]);
    metric(out, "origin_received_bytes_total", "counter", "Body bytes received from origins.",
           o["bytes"]);
    metric(out, "origin_errors_total", "counter",
           "Origin requests and downloads that failed (after their retries).", o["errors"]);
    metric(out, "origin_retries_total", "counter", "Origin requests retried.", o["retries"]);
    metric(out, "origin_downloads_total", "counter", "Objects downloaded from origins.",
           o["fetches"]);
    metric(out, "origin_integrity_failures_total", "counter",
           "Downloads refused because their sha256 did not match.", o["integrity_failures"]);
    if (o.contains("disk_tier")) {
      const json& t = o["disk_tier"];
      metric(out, "disk_tier_hits_total", "counter", "Names served from the disk tier.", t["hits"]);
      metric(out, "disk_tier_misses_total", "counter", "Names the disk tier did not have.",
             t["misses"]);
      metric(out, "disk_tier_evictions_total", "counter", "Blobs evicted from the disk tier.",
             t["evictions"]);
      metric(out, "disk_tier_write_errors_total", "counter",
             "Downloads not kept on disk (a full disk, a write error).", t["write_errors"]);
      metric(out, "disk_tier_bytes", "gauge", "Bytes the disk tier holds.", t["bytes"]);
      metric(out, "disk_tier_budget_bytes", "gauge", "The disk tier's budget.", t["budget"]);
      metric(out, "disk_tier_entries", "gauge", "Blobs the disk tier holds.", t["entries"]);
    }
  }
  const json& p = s["process"];
  metric_named(out, "process_start_time_seconds", "gauge",
               "Start time of the process since the Unix epoch in seconds.", p["start_time_s"]);
  metric_named(out, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.",
               p["cpu_seconds"]);
  metric_named(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               p["resident_bytes"]);
  metric_named(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
               p["virtual_bytes"]);
  metric_named(out, "process_open_fds", "gauge", "Open file descriptors.", p["open_fds"]);
  metric_named(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
               p["max_fds"]);
  return out.str();
}

MetricsServer::MetricsServer(asio::io_context& io, std::function<json()> stats,
                             std::function<bool()> ready, Limits limits)
    : io_(io),
      stats_(std::move(stats)),
      ready_(std::move(ready)),
      limits_(limits),
      acceptor_(io),
      retry_(io) {}

Status MetricsServer::listen(const std::string& addr) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return error(ErrorCode::kBadRequest, "--metrics-addr must be HOST:PORT");
  std::string host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";
  unsigned long port = 0;
  try {
    port = std::stoul(addr.substr(colon + 1));
  } catch (...) {
    return error(ErrorCode::kBadRequest, "--metrics-addr: bad port in \"" + addr + "\"");
  }
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec || port > 65535)
    return error(ErrorCode::kBadRequest, "--metrics-addr: bad address \"" + addr + "\"");
  tcp::endpoint ep(ip, static_cast<unsigned short>(port));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return error(ErrorCode::kInternal, "cannot serve metrics on " + addr + ": " + ec.message());
  accept();
  return {};
}

unsigned short MetricsServer::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void MetricsServer::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
}

void MetricsServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec && ec != asio::error::connection_aborted && ec != asio::error::interrupted) {
      accept_failed(ec);  // out of descriptors: retry later, never spin
      return;
    }
    if (!ec && *open_ >= limits_.max_clients) {
      if (const std::uint64_t n = refusals_.count()) {
        spdlog::warn(
            "metrics: closed {} connection(s) at once: {} open, the most allowed "
            "(--metrics-max-clients)",
            n, *open_);
      }
      boost::system::error_code ignored;
      s.close(ignored);
    } else if (!ec) {
      std::make_shared<HttpSession>(std::move(s), stats_, ready_, open_, limits_.idle_timeout)
          ->start();
    }
    accept();
  });
}

void MetricsServer::accept_failed(const boost::system::error_code& ec) {
  if (const std::uint64_t n = accept_failures_.count()) {
    spdlog::warn(
        "metrics: accept failed: {} ({} time(s) since the last report; retrying every {} ms, "
        "reported at most every {} s)",
        ec.message(), n, kAcceptRetry.count(), kAcceptLogInterval.count());
  }
  retry_.expires_after(kAcceptRetry);
  retry_.async_wait([this](boost::system::error_code e) {
    if (!e && acceptor_.is_open()) accept();
  });
}

}  // namespace modelpool::broker
