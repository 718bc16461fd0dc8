// File: tests/support/scratch_mount.cc
//
// ScratchMount and run_hugepages_sh (see scratch_mount.hpp).
#include "tests/support/scratch_mount.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <utility>

extern char** environ;  // POSIX: the application declares it

namespace modelpool::testing {
namespace {

constexpr char kStateVar[] = "MODELPOOL_HUGEPAGES_STATE_DIR=";

// The calling process's environment with the state directory replaced.
std::vector<std::string> script_env(const std::string& state_dir) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kStateVar, sizeof kStateVar - 1) != 0) env.emplace_back(*e);
  }
  env.push_back(kStateVar + state_dir);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

ScriptResult run_hugepages_sh(const std::string& state_dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/bash", MODELPOOL_HUGEPAGES_SH};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env = script_env(state_dir);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {127, std::string("pipe2: ") + std::strerror(errno)};
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  ::posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, c_strings(argv).data(),
                               c_strings(env).data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return {127, "posix_spawn /bin/bash: " + std::string(std::strerror(rc))};
  }
  ScriptResult result;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return result;
}

ScratchMount::ScratchMount(std::string root)
    : root_(std::move(root)), dir_(root_ + "/mnt"), state_(root_ + "/state") {}

std::unique_ptr<ScratchMount> ScratchMount::tmpfs(std::uint64_t bytes, bool huge,
                                                  std::string* why) {
  return up("tmpfs", {"--size", std::to_string(bytes), "--huge", huge ? "always" : "never"}, why);
}

std::unique_ptr<ScratchMount> ScratchMount::hugetlbfs(std::uint64_t bytes, std::uint64_t pages,
                                                      std::string* why) {
  std::vector<std::string> args = {"--pages", std::to_string(pages)};
  if (bytes != 0) args.insert(args.end(), {"--size", std::to_string(bytes)});
  return up("hugetlbfs", std::move(args), why);
}

std::unique_ptr<ScratchMount> ScratchMount::up(const std::string& kind,
                                               std::vector<std::string> args, std::string* why) {
  std::string templ = "/tmp/mp-" + kind + "-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    *why = std::string("mkdtemp: ") + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<ScratchMount> m(new ScratchMount(templ));
  args.insert(args.begin(), {"up", "--kind", kind, "--dir", m->dir_});
  const ScriptResult r = run_hugepages_sh(m->state_, args);
  if (r.status != 0) {
    *why = r.status == 3
               ? trimmed(r.output)
               : "hugepages.sh up exited " + std::to_string(r.status) + ": " + trimmed(r.output);
    // `up` undid its own work: only the (empty) directories are left.
    ::rmdir(m->dir_.c_str());
    ::rmdir(m->state_.c_str());
    ::rmdir(m->root_.c_str());
    m->root_.clear();  // nothing for the destructor to take down
    return nullptr;
  }
  return m;
}

ScratchMount::~ScratchMount() {
  if (root_.empty()) return;
  const ScriptResult r = run_hugepages_sh(state_, {"down", "--dir", dir_, "--force"});
  if (r.status != 0) {
    std::cerr << "hugepages.sh down --dir " << dir_ << " --force exited " << r.status << ": "
              << r.output << "state left in " << state_ << '\n';
    return;
  }
  ::rmdir(state_.c_str());
  ::rmdir(root_.c_str());
}

}  // namespace modelpool::testing
