// File: tests/fault/chaos/chaos_broker.cc
#include "chaos_broker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace modelpool::chaos {

BrokerProcess::BrokerProcess(std::vector<std::string> argv, std::string log_dir,
                             std::string admin_socket)
    : argv_(std::move(argv)),
      log_dir_(std::move(log_dir)),
      admin_socket_(std::move(admin_socket)) {}

BrokerProcess::~BrokerProcess() {
  if (pid_ > 0) kill9();
}

bool BrokerProcess::start(std::string* why) {
  char name[32];
  std::snprintf(name, sizeof name, "/broker-%03d.log", ++incarnation_);
  log_path_ = log_dir_ + name;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    *why = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], 1);
    if (log >= 0) ::dup2(log, 2);
    ::close_range(3, ~0U, 0);
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  if (log >= 0) ::close(log);
  ::close(out[1]);
  stdout_ = out[0];
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{stdout_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) break;
    char buf[512];
    const ssize_t n = ::read(stdout_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  if (line.find("ready") != std::string::npos) return true;
  ::kill(pid_, SIGKILL);
  const int st = reap();
  *why = "modelpoold did not become ready (wait status " + std::to_string(st) + "): " + log_tail();
  return false;
}

int BrokerProcess::reap() {
  int st = 0;
  while (pid_ > 0 && ::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (stdout_ >= 0) ::close(stdout_);
  stdout_ = -1;
  return st;
}

bool BrokerProcess::kill9(std::string* why) {
  if (pid_ <= 0) return true;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    pid_ = -1;
    reap();
    if (why != nullptr) {
      *why = "modelpoold died by itself (wait status " + std::to_string(st) + "): " + log_tail();
    }
    return false;
  }
  ::kill(pid_, SIGKILL);
  reap();
  return true;
}

std::string BrokerProcess::log_tail() const {
  std::ifstream in(log_path_);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.substr(text.size() > 600 ? text.size() - 600 : 0);
}

int BrokerProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  return reap();
}

std::optional<fault::json> BrokerProcess::admin(const std::string& op, fault::json fields) const {
  fault::Conn c(admin_socket_);
  fields["op"] = op;
  auto r = c.request(fields, std::chrono::seconds(20));
  if (!r || !r->is_object()) return std::nullopt;
  return r;
}

AdoptionLine parse_adoption(const std::string& log_path) {
  std::ifstream in(log_path);
  std::string line;
  AdoptionLine a;
  while (std::getline(in, line)) {
    const auto at = line.find("adopted segment of pool");
    if (at == std::string::npos) continue;
    const char* p = line.c_str() + line.find("\": ", at) + 3;
    a.found = std::sscanf(p, "%d model", &a.kept) == 1;
    const auto dropped = line.find("dropped ", at);
    if (dropped != std::string::npos) {
      a.found =
          a.found && std::sscanf(line.c_str() + dropped, "dropped %d half-loaded and %d invalid",
                                 &a.loading, &a.invalid) == 2;
    }
  }
  return a;
}

namespace {

// The model name in "...<tag>NAME generation ...", or "".
std::string name_after(const std::string& line, const std::string& tag) {
  const auto at = line.find(tag);
  if (at == std::string::npos) return "";
  const auto begin = at + tag.size();
  const auto end = line.find(" generation ", begin);
  return end == std::string::npos ? "" : line.substr(begin, end - begin);
}

}  // namespace

std::vector<std::string> reloads_of_adopted(const std::string& log_path,
                                            std::set<std::string> adopted) {
  std::ifstream in(log_path);
  std::string line;
  std::vector<std::string> reloads;
  while (std::getline(in, line)) {
    if (std::string n = name_after(line, " evicted "); !n.empty()) adopted.erase(n);
    if (std::string n = name_after(line, "load started: "); !n.empty() && adopted.count(n) != 0) {
      reloads.push_back(n);
      adopted.erase(n);
    }
  }
  return reloads;
}

}  // namespace modelpool::chaos
