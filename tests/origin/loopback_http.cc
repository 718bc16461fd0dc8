// File: tests/origin/loopback_http.cc
#include "loopback_http.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace modelpool::testing {

namespace {

struct Url {
  std::string host, port, target;
};

Url parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) throw std::runtime_error("http_request: not http://: " + url);
  const auto slash = url.find('/', scheme.size());
  const std::string authority = url.substr(scheme.size(), slash - scheme.size());
  const auto colon = authority.rfind(':');
  Url u;
  u.host = authority.substr(0, colon);
  u.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  u.target = slash == std::string::npos ? "/" : url.substr(slash);
  return u;
}

int connect_to(const Url& u) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res) != 0 || res == nullptr) {
    throw std::runtime_error("http_request: cannot resolve " + u.host);
  }
  const int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  const bool ok = fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  const int err = errno;
  ::freeaddrinfo(res);
  if (!ok) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("http_request: connect " + u.host + ":" + u.port + ": " +
                             std::strerror(err));
  }
  timeval tv{30, 0};  // bounds every read: no progress for 30 s is an error
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

std::string exchange(int fd, const std::string& request) {
  for (std::size_t done = 0; done < request.size();) {
    const ssize_t n = ::send(fd, request.data() + done, request.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw std::runtime_error(std::string("http_request: send: ") + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  std::string reply;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("http_request: recv: ") + std::strerror(errno));
    if (n == 0) return reply;
    reply.append(buf, static_cast<std::size_t>(n));
  }
}

std::string dechunk(const std::string& body) {
  std::string out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const auto eol = body.find("\r\n", pos);
    if (eol == std::string::npos) throw std::runtime_error("http_request: bad chunk");
    const std::size_t size = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
    if (size == 0) break;
    out += body.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return out;
}

}  // namespace

std::string HttpReply::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

HttpReply http_request(const std::string& url, const std::string& method,
                       const std::vector<std::string>& headers) {
  const Url u = parse_url(url);
  std::string request = method + " " + u.target + " HTTP/1.1\r\nHost: " + u.host + ":" + u.port +
                        "\r\nConnection: close\r\n";
  for (const auto& h : headers) request += h + "\r\n";
  request += "\r\n";
  const int fd = connect_to(u);
  std::string raw;
  try {
    raw = exchange(fd, request);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  const auto head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) {
    throw std::runtime_error("http_request: malformed reply from " + url);
  }
  HttpReply r;
  r.status = std::stoi(raw.substr(9, 3));
  std::size_t pos = raw.find("\r\n") + 2;
  while (pos < head_end) {
    const auto eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    pos = eol + 2;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto value = line.find_first_not_of(' ', colon + 1);
    r.headers[name] = value == std::string::npos ? "" : line.substr(value);
  }
  r.body = raw.substr(head_end + 4);
  if (r.header("transfer-encoding") == "chunked") r.body = dechunk(r.body);
  return r;
}

}  // namespace modelpool::testing
