// File: tests/origin/origin_servers.cc
//
// The shared access-log line, written by nginx's log_format below, by
// s3/s3_server.js and by hub_server.py, is tab-separated:
//   method  uri  status  bytes_sent  body_bytes_sent  range  cache_status
// with "-" or "" for a value the server does not know.
#include "origin_servers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace modelpool::testing {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

namespace {

constexpr auto kPollStep = std::chrono::milliseconds(10);
constexpr int kPollCount = 500;  // with kPollStep: at most 5 s

std::int64_t to_int(const std::string& s, std::int64_t absent) {
  if (s.empty() || s == "-") return absent;
  return std::strtoll(s.c_str(), nullptr, 10);
}

std::string dash_to_empty(const std::string& s) { return s == "-" ? "" : s; }

// State letter from /proc/PID/stat, or 'X' when the process is gone.
char proc_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() ? 'X' : text[paren + 2];
}

bool exited(pid_t pid) {
  const char s = proc_state(pid);
  return s == 'X' || s == 'Z';
}

// Processes whose parent is `parent` (nginx's workers, cache manager, ...).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(text.substr(paren + 2));
    char state = 0;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent) out.push_back(std::stoi(name));
  }
  return out;
}

// Bounded poll (kPollCount steps) until every pid has exited.
bool wait_exited(const std::vector<pid_t>& pids) {
  for (int i = 0; i < kPollCount; ++i) {
    bool all = true;
    for (pid_t p : pids) all = all && exited(p);
    if (all) return true;
    std::this_thread::sleep_for(kPollStep);
  }
  return false;
}

bool can_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string nginx_binary() {
  if (const char* env = std::getenv("MODELPOOL_NGINX"); env != nullptr && *env != '\0') return env;
  if (::access("/usr/sbin/nginx", X_OK) == 0) return "/usr/sbin/nginx";
  return find_program("nginx");
}

std::string python_binary() {
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return find_program("python3");
}

std::string s3rver_modules() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("MODELPOOL_S3RVER_MODULES"); env != nullptr && *env != '\0') {
    dirs.emplace_back(env);
  }
  dirs.push_back(std::string(MODELPOOL_BINARY_DIR) + "/tests/origin/s3/node_modules");
  dirs.push_back(std::string(MODELPOOL_SOURCE_DIR) + "/tests/origin/s3/node_modules");
  for (const auto& d : dirs) {
    if (fs::exists(fs::path(d) / "s3rver" / "package.json")) return d;
  }
  return "";
}

// Starts `argv` and reads its "ready PORT" line.
std::uint16_t start_scripted(std::optional<Child>& child, const std::vector<std::string>& argv,
                             const std::string& stderr_file) {
  child.emplace(argv, true, stderr_file);
  const auto line = child->read_line();
  if (!line || line->rfind("ready ", 0) != 0) {
    child.reset();
    throw std::runtime_error(argv[1] + " did not start: " + read_file(stderr_file));
  }
  return static_cast<std::uint16_t>(std::stoi(line->substr(6)));
}

void stop_scripted(std::optional<Child>& child) {
  if (!child) return;
  child->kill(SIGTERM);
  if (!wait_exited({child->pid()})) child->kill(SIGKILL);
  child->wait();
  child.reset();
}

}  // namespace

std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("free_loopback_port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    const std::string p = (d.empty() ? "." : d) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

AccessLog read_access_log(const std::string& path) {
  AccessLog out;
  std::string text = read_file(path);
  text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string v; std::getline(fields, v, '\t');) f.push_back(v);
    if (f.size() < 5) continue;
    f.resize(7);
    out.push_back(AccessEntry{f[0], f[1], static_cast<int>(to_int(f[2], 0)), to_int(f[3], -1),
                              to_int(f[4], 0), dash_to_empty(f[5]), dash_to_empty(f[6])});
  }
  return out;
}

std::int64_t body_bytes_for(const AccessLog& log, const std::string& uri) {
  std::int64_t sum = 0;
  for (const auto& e : log) {
    if (e.uri == uri) sum += e.body_bytes_sent;
  }
  return sum;
}

bool wait_for_log(const std::string& path, const LogPredicate& done,
                  std::chrono::milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  for (int i = 0; i < 100000; ++i) {
    if (done(read_access_log(path))) return true;
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollStep);
  }
  return false;
}

// ---- NginxServer ------------------------------------------------------------

bool NginxServer::available(std::string* why) {
  if (!nginx_binary().empty()) return true;
  if (why != nullptr) *why = "nginx not found (/usr/sbin/nginx, $PATH or $MODELPOOL_NGINX)";
  return false;
}

NginxServer::NginxServer(NginxOptions options) : options_(std::move(options)) {
  fail_file_ = options_.fail_file.empty() ? dir() + "/fail" : options_.fail_file;
  port_ = options_.port != 0 ? options_.port : free_loopback_port();
  fs::create_directories(dir() + "/tmp");
  std::ofstream(dir() + "/nginx.conf") << config();
  start();
}

NginxServer::~NginxServer() { stop(); }

// Proxy-cache mode, measured with ServersNginx.ProxyCache* and curl: three
// concurrent clients asking bytes=0-4194303, bytes=2097152-8388607 and the
// whole of an 8 MiB file made the origin send 8 x 1 MiB slices, each once
// (sum of $body_bytes_sent == 8388608). The slice module turns every
// request into 1 MiB subrequests whose Range is $slice_range and whose cache
// key includes it; proxy_cache_lock makes concurrent misses on a slice wait
// for the one upstream fetch. Without slice (slice_bytes = 0), nginx drops
// the client's Range on a cacheable miss and fetches the whole file once,
// and the others wait on the lock for all of it.
std::string NginxServer::config() const {
  const std::string d = dir();
  std::ostringstream c;
  if (::geteuid() == 0) c << "user root;\n";  // workers read the tests' files and dirs
  c << "worker_processes 1;\n"
    << "error_log " << d << "/error.log info;\n"
    << "pid " << d << "/nginx.pid;\n"
    << "events { worker_connections 512; }\n"
    << "http {\n";
  for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    c << "  " << t << "_temp_path " << d << "/tmp/" << t << ";\n";
  }
  c << "  default_type application/octet-stream;\n"
    << "  log_format modelpool escape=json '$request_method\\t$uri\\t$status\\t$bytes_sent\\t"
       "$body_bytes_sent\\t$http_range\\t$upstream_cache_status';\n"
    << "  access_log " << d << "/access.log modelpool;\n";
  if (!options_.upstream.empty()) {
    c << "  proxy_cache_path " << d << "/cache levels=1:2 keys_zone=modelpool:10m max_size=4g"
      << " inactive=1h use_temp_path=off;\n";
  }
  c << "  server {\n"
    << "    listen 127.0.0.1:" << port_ << (tls() ? " ssl" : "") << ";\n";
  if (tls()) {
    c << "    ssl_certificate " << options_.tls_cert << ";\n"
      << "    ssl_certificate_key " << options_.tls_key << ";\n";
  }
  c << "    if (-f " << fail_file_ << ") { return 503; }\n";
  if (options_.limit_rate != 0) c << "    limit_rate " << options_.limit_rate << ";\n";
  for (const auto& h : options_.add_headers) c << "    add_header " << h << " always;\n";
  c << options_.server_extra << "\n";
  if (options_.upstream.empty()) {
    c << "    root " << options_.root << ";\n"
      << "    etag on;\n"
      << "    location / { }\n";
  } else {
    c << "    location / {\n";
    if (options_.slice_bytes != 0) {
      c << "      slice " << options_.slice_bytes << ";\n"
        << "      proxy_cache_key $uri$is_args$args$slice_range;\n"
        << "      proxy_set_header Range $slice_range;\n";
    } else {
      c << "      proxy_cache_key $uri$is_args$args;\n";
    }
    c << "      proxy_cache modelpool;\n"
      << "      proxy_cache_valid 200 206 1h;\n"
      << "      proxy_cache_lock on;\n"
      << "      proxy_cache_lock_timeout 10m;\n"
      << "      proxy_cache_lock_age 10m;\n"
      << "      proxy_force_ranges on;\n"
      << "      proxy_http_version 1.1;\n"
      << "      proxy_pass " << options_.upstream << ";\n"
      << "    }\n";
  }
  c << "  }\n}\n";
  return c.str();
}

void NginxServer::start() {
  if (child_) return;
  const std::string bin = nginx_binary();
  if (bin.empty()) throw std::runtime_error("nginx not found");
  child_.emplace(std::vector<std::string>{bin, "-p", dir() + "/", "-c", dir() + "/nginx.conf", "-g",
                                          "daemon off;"},
                 false, dir() + "/stderr.log");
  for (int i = 0; i < kPollCount; ++i) {
    if (can_connect(port_)) return;
    if (exited(child_->pid())) break;
    std::this_thread::sleep_for(kPollStep);
  }
  kill();
  throw std::runtime_error("nginx did not start on port " + std::to_string(port_) + ": " +
                           read_file(dir() + "/stderr.log") + error_log());
}

void NginxServer::stop() {
  if (!child_) return;
  const std::vector<pid_t> workers = children_of(child_->pid());
  child_->kill(SIGTERM);  // fast shutdown: the master waits for its workers
  if (!wait_exited({child_->pid()})) {
    kill();
    return;
  }
  child_->wait();
  child_.reset();
  wait_exited(workers);
}

void NginxServer::kill() {
  if (!child_) return;
  // The workers first read, then the master killed (so it cannot respawn
  // them), then the workers.
  const std::vector<pid_t> workers = children_of(child_->pid());
  child_->kill(SIGKILL);
  for (pid_t w : workers) ::kill(w, SIGKILL);
  child_->wait();
  child_.reset();
  wait_exited(workers);  // reparented; gone or zombies, the socket is closed
}

std::string NginxServer::url() const {
  return (tls() ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_);
}

void NginxServer::set_failing(bool on) {
  if (on) {
    std::ofstream(fail_file_) << "fail\n";
  } else {
    std::error_code ec;
    fs::remove(fail_file_, ec);
  }
}

AccessLog NginxServer::access_log() const { return read_access_log(access_log_path()); }

std::int64_t NginxServer::origin_body_bytes(const std::string& uri) const {
  return body_bytes_for(access_log(), uri);
}

std::string NginxServer::error_log() const { return read_file(dir() + "/error.log"); }

// ---- S3Server ---------------------------------------------------------------

bool S3Server::available(std::string* why) {
  std::string reason;
  if (find_program("node").empty() && ::access("/usr/bin/node", X_OK) != 0) {
    reason = "node not found";
  } else if (s3rver_modules().empty()) {
    reason = "s3rver not installed (npm ci --prefix BUILD/tests/origin/s3, see s3/package.json)";
  } else if (find_program("curl").empty()) {
    reason = "curl CLI not found (S3Server::put signs with curl --aws-sigv4)";
  }
  if (why != nullptr) *why = reason;
  return reason.empty();
}

S3Server::S3Server(std::vector<std::string> buckets, bool allow_anonymous) {
  std::string node = find_program("node");
  if (node.empty()) node = "/usr/bin/node";
  std::vector<std::string> argv = {
      node,          std::string(MODELPOOL_SOURCE_DIR) + "/tests/origin/s3/s3_server.js",
      "--modules",   s3rver_modules(),
      "--directory", dir_.path() + "/data",
      "--log",       dir_.path() + "/access.log"};
  for (const auto& b : buckets) argv.insert(argv.end(), {"--bucket", b});
  if (allow_anonymous) argv.emplace_back("--allow-anonymous");
  port_ = start_scripted(child_, argv, dir_.path() + "/stderr.log");
}

S3Server::~S3Server() { stop(); }

void S3Server::stop() { stop_scripted(child_); }

std::string S3Server::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> S3Server::curl_sigv4_args(const std::string& secret) const {
  // curl 7.88 does not add x-amz-content-sha256, which S3 requires for SigV4.
  return {find_program("curl"),
          "-sS",
          "--aws-sigv4",
          std::string("aws:amz:") + kRegion + ":s3",
          "--user",
          std::string(kAccessKey) + ":" + secret,
          "-H",
          "x-amz-content-sha256: UNSIGNED-PAYLOAD"};
}

void S3Server::put(const std::string& bucket, const std::string& key,
                   const std::string& local_file) {
  auto argv = curl_sigv4_args();
  argv.insert(argv.end(), {"-o", "/dev/null", "-w", "%{http_code}", "-T", local_file,
                           endpoint() + "/" + bucket + "/" + key});
  const auto [status, out] = run_command(argv);
  if (status != 0 || out != "200") {
    throw std::runtime_error("S3 put " + bucket + "/" + key + " failed: " + out);
  }
}

AccessLog S3Server::access_log() const { return read_access_log(access_log_path()); }

// ---- HubServer --------------------------------------------------------------

bool HubServer::available(std::string* why) {
  if (!python_binary().empty()) return true;
  if (why != nullptr) *why = "python3 not found";
  return false;
}

HubServer::HubServer(HubOptions options) : options_(std::move(options)) {
  std::vector<std::string> argv = {
      python_binary(),   std::string(MODELPOOL_SOURCE_DIR) + "/tests/origin/hub_server.py",
      "--root",          options_.root,
      "--log",           dir_.path() + "/access.log",
      "--lfs-threshold", std::to_string(options_.lfs_threshold)};
  if (!options_.token.empty()) argv.insert(argv.end(), {"--token", options_.token});
  if (options_.lfs_redirect) argv.emplace_back("--lfs-redirect");
  port_ = start_scripted(child_, argv, dir_.path() + "/stderr.log");
}

HubServer::~HubServer() { stop(); }

void HubServer::stop() { stop_scripted(child_); }

std::string HubServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

AccessLog HubServer::access_log() const { return read_access_log(access_log_path()); }

std::string HubServer::commit_dir(const std::string& root, const std::string& repo,
                                  const std::string& commit) {
  const std::string d = root + "/" + repo + "/" + commit;
  fs::create_directories(d);
  return d;
}

void HubServer::set_ref(const std::string& root, const std::string& repo, const std::string& ref,
                        const std::string& commit) {
  const fs::path p = fs::path(root) / repo / "refs" / ref;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::trunc) << commit << "\n";
}

}  // namespace modelpool::testing
