// File: clientlib/src/admin_client.hpp
//
// A connection to a broker's admin socket (RUN_DIR/POOL.admin.sock), for
// modelpoolctl and for tests: one call per admin op, each returning the
// reply's fields (without "id" and "ok") as JSON. Internal to the project,
// not part of the installed API. Returns Status/Result, never throws. Not
// thread-safe: one AdminClient per thread.
#ifndef MODELPOOL_CLIENTLIB_SRC_ADMIN_CLIENT_HPP_
#define MODELPOOL_CLIENTLIB_SRC_ADMIN_CLIENT_HPP_

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "clientlib/src/channel.hpp"
#include "shm/status.hpp"

namespace modelpool::detail {

class AdminClient {
 public:
  // Connects to the admin socket at `socket_path`; `timeout` bounds each
  // request (nullopt: no limit). When no broker listens there, fails with
  // kUnavailable and sets `*err_out` to the errno (ENOENT: no socket file,
  // ECONNREFUSED: a stale one), see no_broker_running().
  static Result<AdminClient> connect(const std::string& socket_path,
                                     std::optional<std::chrono::milliseconds> timeout = {},
                                     int* err_out = nullptr);

  // Any admin op: {"op": op, ...fields}.
  Result<nlohmann::json> call(std::string_view op,
                              nlohmann::json fields = nlohmann::json::object());

  Result<nlohmann::json> stats() { return call("stats"); }
  Result<nlohmann::json> list() { return call("list"); }
  Result<nlohmann::json> load(std::string_view model, bool pin = false);
  Result<nlohmann::json> evict(std::string_view model) { return model_op("evict", model); }
  Result<nlohmann::json> pin(std::string_view model) { return model_op("pin", model); }
  Result<nlohmann::json> unpin(std::string_view model) { return model_op("unpin", model); }
  Result<nlohmann::json> clear() { return call("clear"); }
  Result<nlohmann::json> health() { return call("health"); }
  Result<nlohmann::json> config() { return call("config"); }
  Result<nlohmann::json> selfcheck() { return call("selfcheck"); }

 private:
  explicit AdminClient(std::unique_ptr<Channel> channel) : channel_(std::move(channel)) {}
  Result<nlohmann::json> model_op(std::string_view op, std::string_view model);

  std::unique_ptr<Channel> channel_;
};

// True when a connect errno means that no broker is running at the socket
// path (as opposed to, say, a permission problem).
bool no_broker_running(int connect_errno);

}  // namespace modelpool::detail

#endif  // MODELPOOL_CLIENTLIB_SRC_ADMIN_CLIENT_HPP_
