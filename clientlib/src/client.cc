// File: clientlib/src/client.cc
//
// modelpool::Error and modelpool::Client: the throwing C++ surface over the
// Status-returning connection.
#include "modelpool/client.hpp"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "clientlib/src/connection.hpp"
#include "clientlib/src/model_state.hpp"
#include "shm/layout/paths.hpp"

namespace modelpool {
namespace {

[[noreturn]] void throw_status(const Status& s) { throw Error(s.code(), s.message()); }

}  // namespace

Error::Error(ErrorCode code, std::string message)
    : std::runtime_error(std::move(message)), code_(code) {}

// Out of line: the vtable and typeinfo live in the library only.
Error::~Error() = default;

std::string_view Error::code_name() const noexcept { return to_string(code_); }

Client::Client(std::shared_ptr<detail::Connection> connection)
    : connection_(std::move(connection)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Client Client::connect() { return connect(ClientOptions{}); }

Client Client::connect(ClientOptions options) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): only racy against setenv, as everywhere
  if (const char* s = std::getenv("MODELPOOL_SOCKET"); s != nullptr && *s != '\0') {
    return connect(std::string(s), std::move(options));
  }
  return connect(layout::worker_socket_path(layout::default_run_dir(), layout::kDefaultPool),
                 std::move(options));
}

Client Client::connect(const std::string& socket_path) { return connect(socket_path, {}); }

// The reconnect timeout is fixed here, once per Client: reading the
// environment again at each reconnect would race with setenv in other
// threads and make one Client's behaviour change mid-life.
Client Client::connect(const std::string& socket_path, ClientOptions options) {
  std::chrono::milliseconds timeout(10'000);
  if (options.reconnect_timeout) {
    timeout = std::max(std::chrono::milliseconds(0), *options.reconnect_timeout);
    // NOLINTNEXTLINE(concurrency-mt-unsafe): only racy against setenv, as everywhere
  } else if (const char* s = std::getenv("MODELPOOL_RECONNECT_TIMEOUT_MS");
             s != nullptr && *s != '\0') {
    char* end = nullptr;
    const long long ms = std::strtoll(s, &end, 10);
    if (end != s && *end == '\0' && ms >= 0) timeout = std::chrono::milliseconds(ms);
  }
  auto connection = detail::Connection::open(socket_path, timeout, options.release_ring);
  if (!connection.ok()) throw_status(connection.status());
  return Client(std::move(connection).value());
}

Model Client::acquire(std::string_view model, AcquireOptions options) {
  if (!connection_) throw Error(ErrorCode::kUnavailable, "this Client was moved from");
  std::optional<std::uint64_t> wait_ms;
  if (options.wait) {
    wait_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, options.wait->count()));
  }
  auto acquired = connection_->acquire(model, wait_ms, options.populate);
  if (!acquired.ok()) throw_status(acquired.status());
  return Model(std::make_unique<detail::ModelState>(connection_, std::move(acquired).value()));
}

const std::string& Client::pool() const {
  static const std::string kEmpty;
  return connection_ ? connection_->pool() : kEmpty;
}

const std::string& Client::segment_path() const {
  static const std::string kEmpty;
  return connection_ ? connection_->segment_path() : kEmpty;
}

std::uint64_t Client::page_size() const { return connection_ ? connection_->page_size() : 0; }

}  // namespace modelpool
