// File: tests/security/security_support.hpp
//
// Helpers for the ownership tests: running a function in a child process
// as another user (to plant files as that user), and a long-running child
// started as another user through setpriv.
#ifndef MODELPOOL_TESTS_SECURITY_SECURITY_SUPPORT_HPP_
#define MODELPOOL_TESTS_SECURITY_SECURITY_SUPPORT_HPP_

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "admin_support.hpp"

namespace modelpool::testing {

// Runs `fn` in a forked child as `who`; true when it returned true.
template <typename Fn>
bool as_user(Identity who, Fn fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
      ::_exit(126);
    }
    ::_exit(fn() ? 0 : 1);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// argv prefixed so that it runs as `who` with no supplementary groups.
inline std::vector<std::string> setpriv_argv(Identity who, std::vector<std::string> argv) {
  std::vector<std::string> a = {
      "/usr/bin/setpriv", "--reuid", std::to_string(who.uid), "--regid", std::to_string(who.gid),
      "--clear-groups",   "--"};
  a.insert(a.end(), argv.begin(), argv.end());
  return a;
}

// argv run under timeout(1): a broker that starts when it should refuse is
// stopped after `seconds` (exit 124) and fails the test instead of hanging it.
inline std::vector<std::string> bounded(std::vector<std::string> argv, int seconds = 20) {
  argv.insert(argv.begin(), {"/usr/bin/timeout", std::to_string(seconds)});
  return argv;
}

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_SECURITY_SECURITY_SUPPORT_HPP_
