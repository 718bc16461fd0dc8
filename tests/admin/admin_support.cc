// File: tests/admin/admin_support.cc
//
// Child processes with split output (and an optional identity switch done
// between fork and exec), the test users, and the Beast HTTP client.
#include "admin_support.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace modelpool::testing {

int exit_code(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

std::string code_of(const json& reply) {
  if (!reply.is_object() || reply.value("ok", false)) return "";
  return reply.value("error", json::object()).value("code", "?");
}

json Outcome::parsed() const { return json::parse(out, nullptr, /*allow_exceptions=*/false); }

Outcome run(const std::vector<std::string>& argv, std::optional<Identity> as) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe");
  std::vector<char*> args;  // built before fork: the child only calls async-signal-safe functions
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (as && (::setgroups(0, nullptr) != 0 || ::setgid(as->gid) != 0 || ::setuid(as->uid) != 0)) {
      ::_exit(126);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  Outcome o;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&o.out, &o.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("poll");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  o.code = exit_code(st);
  return o;
}

Outcome ctl(std::vector<std::string> args, std::optional<Identity> as) {
  args.insert(args.begin(), binary_path("clientlib/modelpoolctl"));
  return run(args, as);
}

Outcome ctl(const Broker& b, std::vector<std::string> args) {
  args.insert(args.begin(), {"--run-dir", b.run_dir(), "--pool", b.pool()});
  return ctl(std::move(args));
}

namespace {

void must(const std::vector<std::string>& argv) {
  auto [st, out] = run_command(argv);
  if (exit_code(st) != 0) throw std::runtime_error(argv[0] + " failed: " + out);
}

void quietly(const std::vector<std::string>& argv) { (void)run_command(argv); }

Identity identity_of(const std::string& user) {
  const passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) throw std::runtime_error("no user " + user + " after useradd");
  return {pw->pw_uid, pw->pw_gid};
}

}  // namespace

TestUsers::TestUsers() {
  const std::string id = std::to_string(::getpid());
  group_ = "mpg" + id;
  member_name_ = "mpm" + id;
  outsider_name_ = "mpo" + id;
  const std::string other_group = "mpx" + id;
  must({"/usr/sbin/groupadd", group_});
  must({"/usr/sbin/groupadd", other_group});
  const std::vector<std::string> common = {"-M", "-N", "-s", "/usr/sbin/nologin", "-g"};
  std::vector<std::string> add = {"/usr/sbin/useradd"};
  add.insert(add.end(), common.begin(), common.end());
  auto add_member = add;
  add_member.insert(add_member.end(), {group_, member_name_});
  must(add_member);
  add.insert(add.end(), {other_group, outsider_name_});
  must(add);
  const struct group* g = ::getgrnam(group_.c_str());
  if (g == nullptr) throw std::runtime_error("no group " + group_ + " after groupadd");
  gid_ = g->gr_gid;
  member_ = identity_of(member_name_);
  outsider_ = identity_of(outsider_name_);
}

TestUsers::~TestUsers() {
  quietly({"/usr/sbin/userdel", member_name_});
  quietly({"/usr/sbin/userdel", outsider_name_});
  quietly({"/usr/sbin/groupdel", group_});
  quietly({"/usr/sbin/groupdel", "mpx" + std::to_string(::getpid())});
}

HttpReply http_get(unsigned short port, const std::string& target) {
  return http_request(port, "GET", target);
}

HttpReply http_request(unsigned short port, const std::string& method, const std::string& target) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  boost::asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  const timeval limit{5, 0};  // a hung broker fails the test instead of hanging it
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  http::request<http::empty_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::user_agent, "modelpool-admin-test");
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.skip(method == "HEAD");  // a HEAD reply has a Content-Length but no body
  http::read(socket, buffer, parser);
  const auto& res = parser.get();
  HttpReply r;
  r.content_length = res.has_content_length() ? std::string(res[http::field::content_length]) : "";
  r.status = static_cast<int>(res.result_int());
  r.content_type = std::string(res[http::field::content_type]);
  r.body = res.body();
  return r;
}

unsigned short metrics_port(const Broker& b) {
  const std::string& line = b.ready_line();
  const std::string key = "metrics port ";
  const auto at = line.find(key);
  if (at == std::string::npos) return 0;
  return static_cast<unsigned short>(std::stoul(line.substr(at + key.size())));
}

}  // namespace modelpool::testing
