// File: clientlib/src/admin_client.cc
#include "clientlib/src/admin_client.hpp"

#include <cerrno>
#include <utility>

#include "shm/protocol/messages.hpp"

namespace modelpool::detail {

Result<AdminClient> AdminClient::connect(const std::string& socket_path,
                                         std::optional<std::chrono::milliseconds> timeout,
                                         int* err_out) {
  auto channel = Channel::open(socket_path, timeout, err_out);
  if (!channel.ok()) return channel.status();
  return AdminClient(std::move(channel).value());
}

Result<nlohmann::json> AdminClient::call(std::string_view op, nlohmann::json fields) {
  return channel_->call(op, std::move(fields));
}

Result<nlohmann::json> AdminClient::load(std::string_view model, bool pin) {
  return call("load", proto::to_json(proto::ModelRequest{std::string(model), pin}));
}

Result<nlohmann::json> AdminClient::model_op(std::string_view op, std::string_view model) {
  return call(op, proto::to_json(proto::ModelRequest{std::string(model), false}));
}

bool no_broker_running(int connect_errno) {
  return connect_errno == ENOENT || connect_errno == ECONNREFUSED || connect_errno == ENOTDIR;
}

}  // namespace modelpool::detail
