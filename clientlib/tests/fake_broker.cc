// File: clientlib/tests/fake_broker.cc
#include "clientlib/tests/fake_broker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "shm/protocol/frame.hpp"

namespace modelpool::testing {
namespace {

int listen_on(const std::string& path) {
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 64) != 0) {
    throw std::runtime_error("fake broker cannot listen on " + path);
  }
  return fd;
}

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return h;
}

}  // namespace

FakeBroker::FakeBroker(std::uint64_t page_size) : page_size_(page_size) {
  char tmpl[] = "/tmp/mpclient-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  segment_path_ = dir_ + "/pool.segment";
  segment_fd_ = ::open(segment_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (segment_fd_ < 0 || ::ftruncate(segment_fd_, static_cast<off_t>(kSegmentSize)) != 0) {
    throw std::runtime_error("cannot create the fake segment");
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  start();
}

FakeBroker::~FakeBroker() {
  stop();
  ::close(wake_[0]);
  ::close(wake_[1]);
  ::close(segment_fd_);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

const FakeModel& FakeBroker::add_model(const std::string& name, std::string_view bytes,
                                       const std::string& format) {
  std::lock_guard lock(mu_);
  FakeModel m{name, next_offset_, bytes.size(), 1, fnv1a(bytes), format};
  if (::pwrite(segment_fd_, bytes.data(), bytes.size(), static_cast<off_t>(m.offset)) !=
      static_cast<ssize_t>(bytes.size())) {
    throw std::runtime_error("cannot write the fake segment");
  }
  next_offset_ += ((bytes.size() >> 21) + 1) << 21;
  return models_[name] = m;
}

void FakeBroker::set_generation(const std::string& name, std::uint64_t generation) {
  std::lock_guard lock(mu_);
  models_.at(name).generation = generation;
}

void FakeBroker::start() {
  worker_listen_ = listen_on(worker_socket());
  admin_listen_ = listen_on(admin_socket());
  thread_ = std::thread([this] { serve(); });
}

void FakeBroker::stop() {
  if (!thread_.joinable()) return;
  const char c = 'x';
  (void)!::write(wake_[1], &c, 1);
  thread_.join();
  char drain = 0;
  (void)!::read(wake_[0], &drain, 1);
  for (Conn& conn : conns_) close_conn(conn);
  conns_.clear();
  ::close(worker_listen_);
  ::close(admin_listen_);
  ::unlink(worker_socket().c_str());
  ::unlink(admin_socket().c_str());
  std::lock_guard lock(mu_);
  handles_.clear();
  changed_.notify_all();
}

void FakeBroker::set_rewriter(Rewriter f) {
  std::lock_guard lock(mu_);
  rewriter_ = std::move(f);
}

void FakeBroker::set_admin_reply(const std::string& op, nlohmann::json fields) {
  std::lock_guard lock(mu_);
  admin_replies_[op] = std::move(fields);
}

void FakeBroker::set_list_rows(nlohmann::json rows, std::size_t page) {
  std::lock_guard lock(mu_);
  list_rows_ = std::move(rows);
  list_page_ = page;
}

int FakeBroker::live_handles() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(handles_.size());
}
int FakeBroker::acquires() const {
  std::lock_guard lock(mu_);
  return acquires_;
}
int FakeBroker::releases() const {
  std::lock_guard lock(mu_);
  return releases_;
}

bool FakeBroker::await_releases(int n) const {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return releases_ >= n; });
}

bool FakeBroker::await_live_handles(int n) const {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, std::chrono::seconds(10),
                           [&] { return static_cast<int>(handles_.size()) == n; });
}

void FakeBroker::serve() {
  for (;;) {
    std::vector<pollfd> fds{
        {wake_[0], POLLIN, 0}, {worker_listen_, POLLIN, 0}, {admin_listen_, POLLIN, 0}};
    for (const Conn& c : conns_) fds.push_back({c.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    if (fds[0].revents != 0) return;
    if (fds[1].revents != 0) accept_on(worker_listen_, false);
    if (fds[2].revents != 0) accept_on(admin_listen_, true);
    for (std::size_t i = 3; i < fds.size(); ++i) {
      if (fds[i].revents != 0 && !serve_conn(conns_[i - 3])) close_conn(conns_[i - 3]);
    }
    std::erase_if(conns_, [](const Conn& c) { return c.fd < 0; });
  }
}

void FakeBroker::accept_on(int listen_fd, bool admin) {
  const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) conns_.push_back(Conn{fd, admin, {}});
}

bool FakeBroker::serve_conn(Conn& conn) {
  char buf[4096];
  const ssize_t n = ::recv(conn.fd, buf, sizeof buf, 0);
  if (n <= 0) return false;
  proto::FrameDecoder decoder;
  conn.buf.append(buf, static_cast<std::size_t>(n));
  decoder.feed(conn.buf.data(), conn.buf.size());
  std::size_t consumed = 0;
  for (;;) {
    auto frame = decoder.next();
    if (!frame.ok()) return false;
    if (!frame->has_value()) break;
    consumed += proto::kHeaderBytes + (*frame)->size();
    auto req = proto::decode_request(**frame);
    const bool wants_reply = !req.ok() || wants_a_reply(*req);
    std::string payload = req.ok() ? reply_to(conn, *req) : proto::encode_error({}, req.status());
    if (payload.empty() && !wants_reply) continue;
    if (payload.empty()) return false;
    const std::string out = proto::encode_frame(payload);
    if (::send(conn.fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
      return false;
    }
  }
  conn.buf.erase(0, consumed);
  return true;
}

bool FakeBroker::wants_a_reply(const proto::Request& req) {
  if (req.op != "release") return true;
  auto r = proto::decode_release_request(req.body);
  return !r.ok() || r->reply;
}

std::string FakeBroker::reply_to(Conn& conn, const proto::Request& req) {
  std::lock_guard lock(mu_);
  std::string normal = conn.admin ? admin_reply(req) : worker_reply(conn, req);
  if (!wants_a_reply(req)) normal.clear();
  return rewriter_ ? rewriter_(req, normal) : normal;
}

std::string FakeBroker::worker_reply(Conn& conn, const proto::Request& req) {
  if (req.op == "hello") {
    proto::HelloReply h{proto::kProtocolVersion, "pool", segment_path_, kSegmentSize, page_size_};
    return proto::encode_ok(req.id, proto::to_json(h));
  }
  if (req.op == "acquire") {
    auto a = proto::decode_acquire_request(req.body);
    if (!a.ok()) return proto::encode_error(req.id, a.status());
    auto it = models_.find(a->model);
    if (it == models_.end()) {
      return proto::encode_error(req.id, error(ErrorCode::kNotFound, "no model " + a->model));
    }
    const FakeModel& m = it->second;
    ++acquires_;
    const std::uint64_t handle = next_handle_++;
    handles_[handle] = conn.fd;
    proto::AcquireReply r{handle,     m.name,   m.offset, m.size, m.generation,
                          m.checksum, m.format, true,     {},     {}};
    return proto::encode_ok(req.id, proto::to_json(r));
  }
  if (req.op == "release") {
    auto r = proto::decode_release_request(req.body);
    if (!r.ok()) return proto::encode_error(req.id, r.status());
    auto it = handles_.find(r->handle);
    if (it == handles_.end() || it->second != conn.fd) {
      return proto::encode_error(req.id, error(ErrorCode::kStaleHandle, "not your handle"));
    }
    handles_.erase(it);
    ++releases_;
    changed_.notify_all();
    return proto::encode_ok(req.id, nlohmann::json::object());
  }
  return proto::encode_error(req.id, error(ErrorCode::kUnknownOp, "no op " + req.op));
}

std::string FakeBroker::admin_reply(const proto::Request& req) {
  if (req.op == "list") {
    const std::size_t offset = req.body.value("offset", std::size_t{0});
    nlohmann::json page = nlohmann::json::array();
    for (std::size_t i = offset; i < list_rows_.size() && i < offset + list_page_; ++i) {
      page.push_back(list_rows_[i]);
    }
    nlohmann::json fields = {{"models", page}, {"total", list_rows_.size()}};
    if (offset + list_page_ < list_rows_.size()) fields["next_offset"] = offset + list_page_;
    return proto::encode_ok(req.id, fields);
  }
  auto it = admin_replies_.find(req.op);
  if (it == admin_replies_.end()) {
    return proto::encode_error(req.id, error(ErrorCode::kNotFound, "nothing for " + req.op));
  }
  return proto::encode_ok(req.id, it->second);
}

void FakeBroker::close_conn(Conn& conn) {
  if (conn.fd < 0) return;
  {
    std::lock_guard lock(mu_);
    std::erase_if(handles_, [&](const auto& h) { return h.second == conn.fd; });
    changed_.notify_all();
  }
  ::close(conn.fd);
  conn.fd = -1;
}

}  // namespace modelpool::testing
