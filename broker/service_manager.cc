// File: broker/service_manager.cc
#include "broker/service_manager.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstring>
#include <ctime>

namespace modelpool::broker {

ServiceManager::ServiceManager(boost::asio::io_context& io) : timer_(io) {}

void ServiceManager::send(const std::string& state) {
  const int r = ::sd_notify(0, state.c_str());
  if (r < 0)
    spdlog::warn("sd_notify({}): {}", state.substr(0, state.find('\n')), std::strerror(-r));
}

void ServiceManager::status(std::string_view text) { send("STATUS=" + std::string(text)); }

void ServiceManager::ready(std::string_view status) {
  send("READY=1\nSTATUS=" + std::string(status));
}

void ServiceManager::reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const std::uint64_t usec = static_cast<std::uint64_t>(now.tv_sec) * 1000000 +
                             static_cast<std::uint64_t>(now.tv_nsec) / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void ServiceManager::stopping() { send("STOPPING=1\nSTATUS=stopping"); }

void ServiceManager::start_watchdog() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  interval_ = std::chrono::microseconds(usec / 2);
  spdlog::info("watchdog: pinging every {} ms", interval_.count() / 1000);
  ping();
}

void ServiceManager::ping() {
  send("WATCHDOG=1");
  timer_.expires_after(interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) ping();
  });
}

}  // namespace modelpool::broker
