// File: tests/integration/broker_fixture.cc
#include "broker_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "shm/protocol/frame.hpp"

namespace modelpool::testing {

namespace fs = std::filesystem;

std::string binary_path(const std::string& relative) {
  return std::string(MODELPOOL_BINARY_DIR) + "/" + relative;
}

namespace {
std::atomic<int> g_counter{0};

std::string unique_suffix() {
  return std::to_string(::getpid()) + "-" + std::to_string(g_counter.fetch_add(1));
}

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("write: ") + std::strerror(errno));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}
}  // namespace

ScratchDir::ScratchDir() {
  path_ = (fs::temp_directory_path() / ("mp-test-" + unique_suffix())).string();
  fs::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ScratchDir::write_random(const std::string& name, std::uint64_t size,
                                     std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string bytes(size, '\0');
  for (std::uint64_t i = 0; i + 8 <= size; i += 8) {
    std::uint64_t v = rng();
    std::memcpy(bytes.data() + i, &v, 8);
  }
  for (std::uint64_t i = size / 8 * 8; i < size; ++i) bytes[i] = static_cast<char>(rng());
  return write(name, bytes);
}

std::string ScratchDir::write(const std::string& name, const std::string& bytes) {
  fs::path p = fs::path(path_) / name;
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p.string();
}

Child::Child(const std::vector<std::string>& argv, bool capture_stdout,
             const std::string& stderr_file) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  int err = -1;
  if (!stderr_file.empty()) {
    err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err < 0) throw std::runtime_error("open " + stderr_file + ": " + std::strerror(errno));
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(in[0], 0);
    if (capture_stdout) ::dup2(out[1], 1);
    if (err >= 0) ::dup2(err, 2);  // dup2 clears O_CLOEXEC on fd 2
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  if (err >= 0) ::close(err);
  ::close(in[0]);
  ::close(out[1]);
  in_ = in[1];
  out_ = out[0];
}

Child::Child(Child&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      in_(std::exchange(o.in_, -1)),
      out_(std::exchange(o.out_, -1)),
      buf_(std::move(o.buf_)),
      waited_(o.waited_),
      status_(o.status_) {}

Child::~Child() {
  if (pid_ > 0 && !waited_) {
    ::kill(pid_, SIGKILL);
    wait();
  }
  if (in_ >= 0) ::close(in_);
  if (out_ >= 0) ::close(out_);
}

std::optional<std::string> Child::read_line() {
  for (;;) {
    if (auto nl = buf_.find('\n'); nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    char tmp[4096];
    ssize_t n = ::read(out_, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
}

bool Child::write_line(const std::string& line) {
  const std::string text = line + "\n";
  std::size_t done = 0;
  while (in_ >= 0 && done < text.size()) {
    const ssize_t n = ::write(in_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return in_ >= 0;
}

void Child::close_stdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

void Child::kill(int sig) {
  if (pid_ > 0 && !waited_) ::kill(pid_, sig);
}

int Child::wait() {
  if (waited_) return status_;
  while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
  }
  waited_ = true;
  return status_;
}

Broker::Broker(std::string models_dir, std::vector<std::string> extra, std::string pool)
    : models_(std::move(models_dir)), extra_(std::move(extra)) {
  const std::string suffix = unique_suffix();
  pool_ = pool.empty() ? "mptest-" + suffix : pool;
  run_dir_ = (fs::temp_directory_path() / ("mp-run-" + suffix)).string();
}

Broker::~Broker() {
  if (child_) stop(SIGTERM);
  ::unlink(segment_path().c_str());
  std::error_code ec;
  fs::remove_all(run_dir_, ec);
}

std::vector<std::string> Broker::argv() const {
  std::vector<std::string> a = {binary_path("broker/modelpoold"),
                                "--models",
                                models_,
                                "--name",
                                pool_,
                                "--run-dir",
                                run_dir_,
                                "--log-level",
                                "warn"};
  bool has_memory = !default_memory_;
  for (const auto& e : extra_) has_memory = has_memory || e == "--memory";
  if (!has_memory) a.insert(a.end(), {"--memory", "2GiB"});
  // /dev/shm unless a test asks otherwise (a later option wins): the tests
  // here check /dev/shm/POOL and remove the run dir, which a tmpfs mounted
  // in it would outlive. tests/hugepages tests the default.
  a.insert(a.end(), {"--huge-tmpfs", "no"});
  a.insert(a.end(), extra_.begin(), extra_.end());
  return a;
}

std::string Broker::segment_path() const {
  for (std::size_t i = 0; i + 1 < extra_.size(); ++i) {
    if (extra_[i] == "--segment-dir") return extra_[i + 1] + "/" + pool_ + ".segment";
  }
  return "/dev/shm/" + pool_;
}

std::string Broker::stderr_text() const {
  return stderr_file_.empty() ? "" : read_file(stderr_file_);
}

void Broker::start() {
  child_.emplace(argv(), true, stderr_file_);
  auto line = child_->read_line();
  if (!line || line->find("ready") == std::string::npos) {
    int st = child_->wait();
    child_.reset();
    throw std::runtime_error("modelpoold did not start (status " + std::to_string(st) + ")");
  }
  ready_line_ = *line;
}

int Broker::stop(int sig) {
  if (!child_) return -1;
  child_->kill(sig);
  int st = child_->wait();
  child_.reset();
  return st;
}

int Broker::wait_exit() {
  if (!child_) return -1;
  int st = child_->wait();
  child_.reset();
  return st;
}

void Broker::kill9() { stop(SIGKILL); }

std::string Broker::worker_socket() const { return run_dir_ + "/" + pool_ + ".sock"; }
std::string Broker::admin_socket() const { return run_dir_ + "/" + pool_ + ".admin.sock"; }

json Broker::admin(const std::string& op, json fields) const {
  RawConn c(admin_socket());
  fields["op"] = op;
  return c.request(fields);
}

RawConn::RawConn(const std::string& socket_path) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect " + socket_path + ": " + std::strerror(errno));
  }
}

RawConn::~RawConn() { ::close(fd_); }

void RawConn::send_raw(const std::string& bytes) { write_all(fd_, bytes.data(), bytes.size()); }

void RawConn::send_frame(const std::string& payload) {
  std::uint32_t n = static_cast<std::uint32_t>(payload.size());
  std::string hdr(4, '\0');
  for (int i = 0; i < 4; ++i) hdr[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  send_raw(hdr + payload);
}

json RawConn::request(const json& req) {
  send_frame(req.dump());
  auto r = recv();
  if (!r) throw std::runtime_error("broker closed the connection");
  return *r;
}

std::optional<json> RawConn::recv() {
  proto::FrameDecoder d;
  char buf[65536];
  for (;;) {
    auto f = d.next();
    if (!f.ok()) throw std::runtime_error("bad frame from broker");
    if (f->has_value()) return json::parse(**f);
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    d.feed(buf, static_cast<std::size_t>(n));
  }
}

std::pair<int, std::string> run_command(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return {st, text};
}

std::uint64_t shmem_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "Shmem:") return kib * 1024;
  }
  return 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace modelpool::testing
