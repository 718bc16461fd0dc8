// File: broker/server/server.hpp
//
// The two listening Unix sockets (worker RUN_DIR/POOL.sock, mode 0660;
// admin RUN_DIR/POOL.admin.sock, mode 0600), the set of live sessions, and
// graceful shutdown: stop accepting, let in-flight loads finish and replies
// flush, then stop the event loop. Event-loop thread only.
#ifndef MODELPOOL_BROKER_SERVER_SERVER_HPP_
#define MODELPOOL_BROKER_SERVER_SERVER_HPP_

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "broker/config.hpp"
#include "broker/server/dispatch.hpp"
#include "broker/server/log_throttle.hpp"
#include "broker/server/service.hpp"

namespace modelpool::broker {

class Server {
 public:
  Server(boost::asio::io_context& io, const Config& config, Service& service);
  ~Server();

  // Binds and listens on both sockets; a clear error when that fails.
  Status listen(const std::string& worker_path, const std::string& admin_path);
  // Stops accepting, finishes in-flight loads, flushes replies, then calls `done`.
  void shutdown(std::function<void()> done);
  std::size_t clients() const { return sessions_.size(); }

 private:
  using Acceptor = boost::asio::local::stream_protocol::acceptor;
  void accept(Acceptor& acceptor, bool admin);
  // accept() failed for want of descriptors (EMFILE, ENFILE) or memory:
  // retry after kAcceptRetry, logging at most once per kAcceptLogInterval.
  void accept_failed(Acceptor& acceptor, bool admin, const boost::system::error_code& ec);
  void on_session_closed(Session& s);
  void maybe_done();

  boost::asio::io_context& io_;
  const Config& config_;
  Service& service_;
  Dispatcher dispatcher_;
  Acceptor worker_;
  Acceptor admin_;
  std::string worker_path_, admin_path_;
  std::unordered_map<std::uint64_t, SessionPtr> sessions_;
  std::uint64_t next_session_ = 1;
  static constexpr std::chrono::milliseconds kAcceptRetry{100};
  static constexpr std::chrono::seconds kAcceptLogInterval{10};
  LogThrottle accept_failures_{kAcceptLogInterval};
  LogThrottle refusals_{kAcceptLogInterval};  // past --max-clients
  bool stopping_ = false;
  std::function<void()> done_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_SERVER_HPP_
