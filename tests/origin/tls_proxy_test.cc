// File: tests/origin/tls_proxy_test.cc
//
// TLS is verified: an https origin whose certificate comes from a CA the
// system does not know is refused, and served once --origin-ca names that
// CA. Proxies come from the environment: HTTP_PROXY sends the requests to
// a proxy (nginx) that reaches an origin the broker cannot, and NO_PROXY
// takes a host back out of it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "origin_servers.hpp"
#include "remote_support.hpp"

namespace modelpool::testing {
namespace {

// A CA and a server certificate for 127.0.0.1 signed by it, by the openssl CLI.
bool make_certificates(const std::string& dir, std::string* why) {
  const std::string openssl = find_program("openssl");
  const std::vector<std::vector<std::string>> steps = {
      {openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=modelpool test CA", "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem"},
      {openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
       dir + "/server.key", "-out", dir + "/server.csr"},
      {"/bin/sh", "-c", "printf 'subjectAltName=IP:127.0.0.1\\n' > '" + dir + "/san.ext'"},
      {openssl, "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir + "/san.ext", "-out",
       dir + "/server.pem"},
  };
  for (const auto& argv : steps) {
    const auto [code, out] = run_command(argv);
    if (code != 0) {
      *why = argv[0] + " failed: " + out;
      return false;
    }
  }
  return true;
}

TEST(OriginTls, AnUnknownCaIsRefusedAndOriginCaAddsIt) {
  std::string why;
  if (!NginxServer::available(&why)) GTEST_SKIP() << why;
  if (find_program("openssl").empty()) GTEST_SKIP() << "no openssl CLI to make certificates";
  ScratchDir pki, root, models;
  ASSERT_TRUE(make_certificates(pki.path(), &why)) << why;
  const std::string model = root.write_random("org/m.raw", 2 << 20, 41);
  NginxServer origin(NginxOptions{.root = root.path(),
                                  .tls_cert = pki.path() + "/server.pem",
                                  .tls_key = pki.path() + "/server.key"});
  ASSERT_EQ(origin.url().rfind("https://", 0), 0u);
  {
    Broker b(models.path(), {"--origin", origin.url(), "--origin-retries", "0"});
    b.start();
    const std::string got = acquire_or_error(b, "org/m.raw");
    EXPECT_EQ(got.rfind("error load_failed: ", 0), 0u) << got.substr(0, 200);
    EXPECT_NE(got.find(origin.url()), std::string::npos) << got;
  }
  Broker b(models.path(), {"--origin", origin.url(), "--origin-ca", pki.path() + "/ca.pem"});
  b.start();
  EXPECT_TRUE(acquire_or_error(b, "org/m.raw") == read_file(model));
}

TEST(OriginProxy, HttpProxyReachesTheOriginAndNoProxyTakesAHostOut) {
  std::string why;
  if (!NginxServer::available(&why)) GTEST_SKIP() << why;
  ScratchDir root, models;
  const std::string model = root.write_random("org/m.raw", 2 << 20, 43);
  NginxServer origin(NginxOptions{.root = root.path()});
  NginxServer proxy(NginxOptions{.upstream = origin.url()});
  // A host name no resolver knows: only the proxy can reach "it".
  const std::string far = "http://models.example.invalid:8080";
  {
    ScopedEnv env;
    env.set("HTTP_PROXY", proxy.url());
    env.set("NO_PROXY", "localhost");
    Broker b(models.path(), {"--origin", far});
    b.start();
    EXPECT_TRUE(acquire_or_error(b, "org/m.raw") == read_file(model));
    EXPECT_GT(proxy.origin_body_bytes("/org/m.raw"), 0) << "not through the proxy";
  }
  ScopedEnv env;
  env.set("HTTP_PROXY", proxy.url());
  env.set("NO_PROXY", "models.example.invalid");
  Broker b(models.path(), {"--origin", far, "--origin-retries", "0"});
  b.start();
  const std::string got = acquire_or_error(b, "org/m.raw");
  EXPECT_EQ(got.rfind("error load_failed: ", 0), 0u) << got.substr(0, 200);
  EXPECT_NE(got.find(far), std::string::npos) << got;
}

}  // namespace
}  // namespace modelpool::testing
