// File: broker/server/server.cc
#include "broker/server/server.hpp"

#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "shm/layout/ownership.hpp"
#include "shm/protocol/messages.hpp"

namespace modelpool::broker {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {

// We hold the pool lock, so a socket of ours at `path` is a dead broker's
// and may go. Anything else (another user's file, or not a socket) is not
// ours to unlink: refused. The run directory was checked (run_dir.hpp), so
// nobody else can swap the entry between lstat and unlink.
Status remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};
  if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid()) {
    return layout::check_owned(st, S_IFSOCK, ::geteuid(), "socket path", path,
                               "the broker replaces only a stale socket of its own");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return error(ErrorCode::kInternal,
                 "cannot remove stale socket " + path + ": " + std::strerror(errno));
  }
  return {};
}

Status bind_socket(stream::acceptor& a, const std::string& path, mode_t mode, gid_t gid) {
  if (Status s = remove_stale_socket(path); !s.ok()) return s;
  boost::system::error_code ec;
  a.open(stream(), ec);
  if (!ec) a.bind(stream::endpoint(path), ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return error(ErrorCode::kInternal, "cannot listen on " + path + ": " + ec.message());
  if (gid != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    return error(ErrorCode::kInternal,
                 "cannot give " + path + " to its group: " + std::strerror(errno));
  }
  if (::chmod(path.c_str(), mode) != 0) {
    return error(ErrorCode::kInternal, "cannot chmod " + path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

Server::Server(asio::io_context& io, const Config& config, Service& service)
    : io_(io),
      config_(config),
      service_(service),
      dispatcher_(service, config, [this] { return sessions_.size(); }),
      worker_(io),
      admin_(io) {}

Server::~Server() {
  if (!worker_path_.empty()) ::unlink(worker_path_.c_str());
  if (!admin_path_.empty()) ::unlink(admin_path_.c_str());
}

Status Server::listen(const std::string& worker_path, const std::string& admin_path) {
  gid_t gid = static_cast<gid_t>(-1);
  if (!config_.group.empty()) {
    const group* g = ::getgrnam(config_.group.c_str());
    if (g == nullptr)
      return error(ErrorCode::kBadRequest, "--group: no group named \"" + config_.group + "\"");
    gid = g->gr_gid;
  }
  // Sockets are created with mode 0600 and opened up afterwards.
  const mode_t old = ::umask(0177);
  Status s = bind_socket(worker_, worker_path, 0660, gid);
  if (s.ok()) worker_path_ = worker_path;
  if (s.ok()) s = bind_socket(admin_, admin_path, 0600, static_cast<gid_t>(-1));
  if (s.ok()) admin_path_ = admin_path;
  ::umask(old);
  if (!s.ok()) return s;
  accept(worker_, false);
  accept(admin_, true);
  return {};
}

void Server::accept(Acceptor& acceptor, bool admin) {
  acceptor.async_accept([this, &acceptor, admin](boost::system::error_code ec,
                                                 stream::socket sock) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) return;
      if (ec != asio::error::connection_aborted && ec != asio::error::interrupted) {
        accept_failed(acceptor, admin, ec);  // out of descriptors: retry later, never spin
        return;
      }
    } else if (sessions_.size() >= config_.max_clients) {
      if (const std::uint64_t n = refusals_.count()) {
        spdlog::warn("refused {} connection(s): {} clients connected (--max-clients)", n,
                     sessions_.size());
      }
      std::string frame = proto::encode_frame(
          proto::encode_error(nullptr, error(ErrorCode::kPoolFull, "too many clients connected")));
      boost::system::error_code ignored;
      asio::write(sock, asio::buffer(frame), ignored);
    } else {
      const std::uint64_t id = next_session_++;
      auto session = std::make_shared<Session>(
          std::move(sock), id, admin, config_.max_outbound_bytes,
          [this](const SessionPtr& s, std::string_view payload) { dispatcher_.handle(s, payload); },
          [this](Session& s) { on_session_closed(s); });
      sessions_.emplace(id, session);
      spdlog::info("{} connected to the {} socket", session->describe(),
                   admin ? "admin" : "worker");
      session->start();
    }
    if (!stopping_) accept(acceptor, admin);
  });
}

void Server::accept_failed(Acceptor& acceptor, bool admin, const boost::system::error_code& ec) {
  if (const std::uint64_t n = accept_failures_.count()) {
    spdlog::warn(
        "accept failed: {} ({} time(s) since the last report; retrying every {} ms, "
        "reported at most every {} s)",
        ec.message(), n, kAcceptRetry.count(), kAcceptLogInterval.count());
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, kAcceptRetry);
  timer->async_wait([this, &acceptor, admin, timer](boost::system::error_code e) {
    if (!e && !stopping_) accept(acceptor, admin);
  });
}

void Server::on_session_closed(Session& s) {
  service_.disconnect(s);
  // Erase after the current handler returns: the session may be mid-callback.
  const std::uint64_t id = s.id();
  asio::post(io_, [this, id] {
    sessions_.erase(id);
    maybe_done();
  });
}

void Server::shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  done_ = std::move(done);
  spdlog::info("stopping: no new connections; {} client(s), {} load(s) in flight", sessions_.size(),
               service_.loads_in_flight());
  service_.set_shutting_down();
  boost::system::error_code ignored;
  worker_.close(ignored);
  admin_.close(ignored);
  auto close_all = [this] {
    std::vector<SessionPtr> all;
    for (auto& [id, s] : sessions_) all.push_back(s);
    for (auto& s : all) s->close_after_flush();
    maybe_done();
  };
  if (service_.loads_in_flight() == 0) {
    close_all();
  } else {
    service_.on_idle(close_all);
  }
}

void Server::maybe_done() {
  if (stopping_ && sessions_.empty() && service_.loads_in_flight() == 0 && done_) {
    auto d = std::move(done_);
    done_ = nullptr;
    d();
  }
}

}  // namespace modelpool::broker
