// File: broker/server/metrics_http.hpp
//
// Prometheus text exposition on http://HOST:PORT/metrics (--metrics-addr),
// served with Boost.Beast on the broker's event loop. Off by default. Any
// other path is 404; one request per connection is enough for a scraper.
#ifndef MODELPOOL_BROKER_SERVER_METRICS_HTTP_HPP_
#define MODELPOOL_BROKER_SERVER_METRICS_HTTP_HPP_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "shm/status.hpp"

namespace modelpool::broker {

// Renders `stats` (the admin `stats` reply) as Prometheus text format 0.0.4.
std::string render_prometheus(const nlohmann::json& stats);

class MetricsServer {
 public:
  MetricsServer(boost::asio::io_context& io, std::function<nlohmann::json()> stats);
  // Listens on "HOST:PORT" ("127.0.0.1:9464", "[::1]:9464", ":9464").
  Status listen(const std::string& addr);
  void stop();
  unsigned short port() const;

 private:
  void accept();
  boost::asio::io_context& io_;
  std::function<nlohmann::json()> stats_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_METRICS_HTTP_HPP_
