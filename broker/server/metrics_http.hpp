// File: broker/server/metrics_http.hpp
//
// Prometheus text exposition on http://HOST:PORT/metrics (--metrics-addr),
// served with Boost.Beast on the broker's event loop, and the probes an
// orchestrator asks: /healthz (alive) and /readyz (started: segment adopted,
// preloads in; not while stopping). Off by default. Any other path is 404;
// one request per connection is enough for a scraper.
// The port is unauthenticated, so it is bounded: at most `max_clients`
// connections at once (past that a new one is closed at once, unanswered),
// each closed when its exchange has not finished within `idle_timeout`, and
// an accept that fails (out of descriptors) is retried after kAcceptRetry,
// reported at most once per kAcceptLogInterval, never in a busy loop.
#ifndef MODELPOOL_BROKER_SERVER_METRICS_HTTP_HPP_
#define MODELPOOL_BROKER_SERVER_METRICS_HTTP_HPP_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "broker/server/log_throttle.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// Renders `stats` (the admin `stats` reply) as Prometheus text format 0.0.4.
std::string render_prometheus(const nlohmann::json& stats);

class MetricsServer {
 public:
  struct Limits {
    std::size_t max_clients = 64;                   // --metrics-max-clients
    std::chrono::milliseconds idle_timeout{10000};  // --metrics-idle-timeout
  };
  // Serves GET and HEAD of /metrics (`stats` rendered), /healthz (200 while
  // the event loop answers) and /readyz (200 when `ready`, else 503).
  MetricsServer(boost::asio::io_context& io, std::function<nlohmann::json()> stats,
                std::function<bool()> ready, Limits limits);
  // Listens on "HOST:PORT" ("127.0.0.1:9464", "[::1]:9464", ":9464").
  Status listen(const std::string& addr);
  void stop();
  unsigned short port() const;

 private:
  static constexpr std::chrono::milliseconds kAcceptRetry{100};
  static constexpr std::chrono::seconds kAcceptLogInterval{10};

  void accept();
  void accept_failed(const boost::system::error_code& ec);
  boost::asio::io_context& io_;
  std::function<nlohmann::json()> stats_;
  std::function<bool()> ready_;
  const Limits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  // Open connections; shared with them, as they may outlive this object
  // inside the io_context's queue at shutdown.
  std::shared_ptr<std::size_t> open_ = std::make_shared<std::size_t>(0);
  LogThrottle accept_failures_{kAcceptLogInterval};
  LogThrottle refusals_{kAcceptLogInterval};
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_METRICS_HTTP_HPP_
