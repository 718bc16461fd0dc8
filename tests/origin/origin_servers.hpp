// File: tests/origin/origin_servers.hpp
//
// Real servers on loopback for the remote-origin tests (never mocks): nginx
// as a static origin or as a caching proxy in front of one, s3rver as an
// S3-compatible endpoint (with SigV4 verified by tests/origin/s3/
// s3_server.js), and tests/origin/hub_server.py as a Hugging Face
// hub-compatible endpoint. Each server runs as a child process in its own
// scratch directory, is ready when its constructor returns (a TCP connect
// or its "ready PORT" line; no sleeps), and is stopped and removed by its
// destructor. All three write the same access-log format, read back as
// AccessEntry records. Not thread-safe: one test thread drives a server.
#ifndef MODELPOOL_TESTS_ORIGIN_ORIGIN_SERVERS_HPP_
#define MODELPOOL_TESTS_ORIGIN_ORIGIN_SERVERS_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "broker_fixture.hpp"
#include "loopback_http.hpp"

namespace modelpool::testing {

// A port that was free on 127.0.0.1 a moment ago (bind to 0, read, close).
std::uint16_t free_loopback_port();

// Absolute path of `name` on $PATH, "" when absent.
std::string find_program(const std::string& name);

// One request as a server's access log records it. A field the server does
// not know is -1 (numbers) or "" (strings).
struct AccessEntry {
  std::string method;
  std::string uri;  // nginx: $uri (decoded, no query); s3/hub: the raw target
  int status = 0;
  std::int64_t bytes_sent = -1;  // headers + body (nginx only)
  std::int64_t body_bytes_sent = 0;
  std::string range;         // the request's Range header
  std::string cache_status;  // nginx $upstream_cache_status
};
using AccessLog = std::vector<AccessEntry>;

// Parses the shared tab-separated format (see origin_servers.cc); a last line
// without its newline (being written) is left out.
AccessLog read_access_log(const std::string& path);
using LogPredicate = std::function<bool(const AccessLog&)>;
// Polls the log at `path` (every 10 ms, at most `timeout`) until `done`
// holds; returns whether it did. Every server writes a request's line after
// sending the reply, so a client can finish before the line exists: tests
// wait for the lines they count instead of reading the log once.
bool wait_for_log(const std::string& path, const LogPredicate& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(5));
// Sum of body_bytes_sent over the entries for `uri` (any status).
std::int64_t body_bytes_for(const AccessLog& log, const std::string& uri);

// Members carry {} so that designated initializers may leave them out
// (-Wmissing-field-initializers).
struct NginxOptions {
  // Origin mode: serve this directory (ETag and Range as nginx does).
  std::string root{};
  // Proxy-cache mode when non-empty, e.g. origin.url(): proxy_cache with the
  // slice module, so each byte of the upstream is fetched once (see .cc).
  std::string upstream{};
  std::uint64_t slice_bytes = 1 << 20;  // proxy mode; 0 = cache whole files
  std::uint64_t limit_rate = 0;         // bytes/s per response, 0 = none
  // While this file exists every request gets 503; "" = DIR/fail.
  std::string fail_file{};
  std::vector<std::string> add_headers{};  // "Name value", sent on every reply
  std::string server_extra{};              // raw text inserted in the server block
  std::uint16_t port = 0;                  // 0 = free_loopback_port()
  // TLS when both are set (PEM files); url() is then https://.
  std::string tls_cert{};
  std::string tls_key{};
};

class NginxServer {
 public:
  // False with `why` when the nginx binary ($MODELPOOL_NGINX, /usr/sbin/nginx
  // or nginx on $PATH) is missing.
  static bool available(std::string* why = nullptr);
  // Writes DIR/nginx.conf and starts; throws std::runtime_error with the
  // error log when nginx does not come up within 5 s.
  explicit NginxServer(NginxOptions options);
  NginxServer(const NginxServer&) = delete;
  NginxServer& operator=(const NginxServer&) = delete;
  ~NginxServer();  // stop() and remove DIR

  void start();  // again after stop()/kill(): same port, same config
  void stop();   // SIGTERM to the master, wait for it and its workers
  void kill();   // SIGKILL the master and its workers: the origin dies
  bool running() const { return child_.has_value(); }

  std::string url() const;  // http://127.0.0.1:PORT
  std::uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }
  const std::string& fail_file() const { return fail_file_; }
  void set_failing(bool on);  // creates or removes fail_file()

  AccessLog access_log() const;
  // Body bytes this server sent for `uri` (in proxy mode: to its clients).
  std::int64_t origin_body_bytes(const std::string& uri) const;
  bool wait_for_log(const LogPredicate& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    return testing::wait_for_log(access_log_path(), done, timeout);
  }
  std::string access_log_path() const { return dir() + "/access.log"; }
  std::string error_log() const;

 private:
  std::string config() const;
  bool tls() const { return !options_.tls_cert.empty() && !options_.tls_key.empty(); }

  NginxOptions options_;
  ScratchDir dir_;
  std::string fail_file_;
  std::uint16_t port_ = 0;
  std::optional<Child> child_;
};

class S3Server {
 public:
  static constexpr const char* kAccessKey = "S3RVER";  // s3rver's documented pair
  static constexpr const char* kSecretKey = "S3RVER";
  static constexpr const char* kRegion = "us-east-1";
  // False with `why` when node, the installed s3rver package or the curl CLI
  // (used by put()) is missing. s3rver is looked up in
  // $MODELPOOL_S3RVER_MODULES, then BUILD/tests/origin/s3/node_modules, then
  // SOURCE/tests/origin/s3/node_modules.
  static bool available(std::string* why = nullptr);
  // Starts s3rver with `buckets` created; throws std::runtime_error when it
  // does not print its ready line.
  explicit S3Server(std::vector<std::string> buckets = {"models"}, bool allow_anonymous = false);
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;
  ~S3Server();

  std::string endpoint() const;  // http://127.0.0.1:PORT (AWS_ENDPOINT_URL)
  std::uint16_t port() const { return port_; }
  // Uploads `local_file` as s3://bucket/key with a SigV4-signed PUT; throws
  // std::runtime_error unless S3 answers 200.
  void put(const std::string& bucket, const std::string& key, const std::string& local_file);
  // `curl --aws-sigv4` arguments for a signed request, before the URL.
  std::vector<std::string> curl_sigv4_args(const std::string& secret = kSecretKey) const;
  AccessLog access_log() const;
  std::size_t access_count() const { return access_log().size(); }
  bool wait_for_log(const LogPredicate& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    return testing::wait_for_log(access_log_path(), done, timeout);
  }
  std::string access_log_path() const { return dir_.path() + "/access.log"; }
  void stop();

 private:
  ScratchDir dir_;
  std::uint16_t port_ = 0;
  std::optional<Child> child_;
};

struct HubOptions {
  std::string root{};                     // ROOT/ORG/NAME/COMMIT/FILE and ROOT/ORG/NAME/refs/REV
  std::string token{};                    // non-empty: require Bearer TOKEN
  std::uint64_t lfs_threshold = 1 << 20;  // larger files get X-Linked-*
  bool lfs_redirect = false;              // 302 LFS files to /cdn-lfs/...
};

class HubServer {
 public:
  static bool available(std::string* why = nullptr);  // python3 present
  explicit HubServer(HubOptions options);
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;
  ~HubServer();

  std::string url() const;  // http://127.0.0.1:PORT (HF_ENDPOINT)
  std::uint16_t port() const { return port_; }
  AccessLog access_log() const;
  bool wait_for_log(const LogPredicate& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    return testing::wait_for_log(access_log_path(), done, timeout);
  }
  std::string access_log_path() const { return dir_.path() + "/access.log"; }
  void stop();

  // Layout helpers for tests: ROOT/REPO/COMMIT (created; returned) and
  // ROOT/REPO/refs/REF holding `commit`. REPO is "ORG/NAME".
  static std::string commit_dir(const std::string& root, const std::string& repo,
                                const std::string& commit);
  static void set_ref(const std::string& root, const std::string& repo, const std::string& ref,
                      const std::string& commit);

 private:
  HubOptions options_;
  ScratchDir dir_;
  std::uint16_t port_ = 0;
  std::optional<Child> child_;
};

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_ORIGIN_ORIGIN_SERVERS_HPP_
