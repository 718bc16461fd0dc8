// File: tests/origin/loopback_http.hpp
//
// A minimal HTTP/1.1 client over a plain socket for the origin tests, so
// they speak to the test servers without the curl CLI: one request per
// connection (Connection: close), the reply read to EOF, chunked bodies
// decoded. http:// only.
#ifndef MODELPOOL_TESTS_ORIGIN_LOOPBACK_HTTP_HPP_
#define MODELPOOL_TESTS_ORIGIN_LOOPBACK_HTTP_HPP_

#include <map>
#include <string>
#include <vector>

namespace modelpool::testing {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& lower_name) const;  // "" when absent
};

// `url` is http://HOST:PORT/TARGET; `headers` are "Name: value" lines.
// Throws std::runtime_error on a bad URL, a socket error, a malformed reply
// or no progress for 30 s.
HttpReply http_request(const std::string& url, const std::string& method = "GET",
                       const std::vector<std::string>& headers = {});

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_ORIGIN_LOOPBACK_HTTP_HPP_
