// File: broker/server/dispatch.hpp
//
// Routes each request frame to its handler through one table from op name to
// handler (not an if-chain). Admin ops sent to the worker socket are
// forbidden; unknown ops are unknown_op; every decode error is bad_request.
// Event-loop thread only.
#ifndef MODELPOOL_BROKER_SERVER_DISPATCH_HPP_
#define MODELPOOL_BROKER_SERVER_DISPATCH_HPP_

#include <functional>
#include <string>
#include <string_view>

#include "broker/server/service.hpp"
#include "broker/server/session.hpp"

namespace modelpool::broker {

class Dispatcher {
 public:
  Dispatcher(Service& service, const Config& config, std::function<std::size_t()> client_count);
  void handle(const SessionPtr& s, std::string_view payload);

 private:
  Service& service_;
  const Config& config_;
  std::function<std::size_t()> client_count_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_DISPATCH_HPP_
