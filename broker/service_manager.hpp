// File: broker/service_manager.hpp
//
// What the broker tells the service manager that started it (systemd's
// sd_notify protocol, through libsystemd): STATUS= lines as it starts,
// READY=1 once the segment is adopted and the preloads are in, RELOADING=1
// and READY=1 around a SIGHUP reload, STOPPING=1 at shutdown, and WATCHDOG=1
// from the event loop every half of WatchdogSec while the loop turns. Without
// $NOTIFY_SOCKET (not started by systemd) every call does nothing.
// Event-loop thread only.
#ifndef MODELPOOL_BROKER_SERVICE_MANAGER_HPP_
#define MODELPOOL_BROKER_SERVICE_MANAGER_HPP_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "broker/server/log_throttle.hpp"

namespace modelpool::broker {

class ServiceManager {
 public:
  explicit ServiceManager(boost::asio::io_context& io);

  void status(std::string_view text);
  void ready(std::string_view status);
  void reloading();
  void stopping();
  // Starts the WATCHDOG=1 pings when the service has a watchdog (WatchdogSec=).
  void start_watchdog();
  // The interval between pings; zero without a watchdog.
  std::chrono::microseconds watchdog_interval() const { return interval_; }

 private:
  void send(const std::string& state);
  void ping();

  boost::asio::steady_timer timer_;
  std::chrono::microseconds interval_{0};
  LogThrottle failures_{std::chrono::minutes(1)};
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVICE_MANAGER_HPP_
