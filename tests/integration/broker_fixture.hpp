// File: tests/integration/broker_fixture.hpp
//
// Test support for multi-process tests: a scratch directory, the real
// modelpoold started on a scratch run dir with a unique pool name (ready when
// it prints its ready line, so no sleeps), a raw protocol connection for
// bogus-input tests, worker child processes, and /proc readings. After
// memcached's new_memcached and iceoryx's RouDiEnv.
#ifndef MODELPOOL_TESTS_INTEGRATION_BROKER_FIXTURE_HPP_
#define MODELPOOL_TESTS_INTEGRATION_BROKER_FIXTURE_HPP_

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace modelpool::testing {

using nlohmann::json;

std::string binary_path(const std::string& relative);  // under the build dir

class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::string& path() const { return path_; }
  // Writes `size` pseudo-random bytes (seeded) to path()/name; returns the bytes' path.
  std::string write_random(const std::string& name, std::uint64_t size, std::uint32_t seed = 1);
  std::string write(const std::string& name, const std::string& bytes);

 private:
  std::string path_;
};

// A child process with its stdin/stdout connected to pipes. With a non-empty
// `stderr_file`, the child's stderr is appended to that file instead of
// going to the test's stderr.
class Child {
 public:
  Child(const std::vector<std::string>& argv, bool capture_stdout = true,
        const std::string& stderr_file = "");
  Child(Child&& other) noexcept;
  Child(const Child&) = delete;
  ~Child();
  pid_t pid() const { return pid_; }
  // One line of the child's stdout (without '\n'); nullopt on EOF.
  std::optional<std::string> read_line();
  // Writes `line` and a newline to the child's stdin; false when it is closed.
  bool write_line(const std::string& line);
  void close_stdin();
  void kill(int sig);
  // waitpid; returns the raw status.
  int wait();

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buf_;
  bool waited_ = false;
  int status_ = 0;
};

class Broker {
 public:
  // Starts modelpoold --models models_dir with a unique pool and run dir.
  explicit Broker(std::string models_dir, std::vector<std::string> extra = {},
                  std::string pool = "");
  ~Broker();  // SIGTERM, wait, remove the segment
  // Options for the next start(). Capturing stderr appends the broker's log
  // (and its one-line startup failures) to `path`; read it with
  // stderr_text(). Without the default budget, the fixture passes no
  // --memory of its own (the broker picks its default).
  void capture_stderr(std::string path) { stderr_file_ = std::move(path); }
  void use_default_memory(bool on) { default_memory_ = on; }
  const std::string& stderr_file() const { return stderr_file_; }
  std::string stderr_text() const;  // "" when not captured
  // The line the broker printed when ready ("modelpoold: ready (pool P,
  // worker socket S[, metrics port N])"); "" before start().
  const std::string& ready_line() const { return ready_line_; }
  void start();
  int stop(int sig = SIGTERM);  // returns exit status
  int wait_exit();              // for a broker already told to stop; exit status
  void kill9();
  const std::string& pool() const { return pool_; }
  const std::string& run_dir() const { return run_dir_; }
  std::string worker_socket() const;
  std::string admin_socket() const;
  // /dev/shm/POOL, or DIR/POOL.segment when `extra` has --segment-dir DIR.
  std::string segment_path() const;
  pid_t pid() const { return child_ ? child_->pid() : -1; }
  // One admin request; returns the whole reply.
  json admin(const std::string& op, json fields = json::object()) const;
  std::vector<std::string> argv() const;

 private:
  std::string models_, pool_, run_dir_;
  std::vector<std::string> extra_;
  std::string stderr_file_;
  bool default_memory_ = true;
  std::string ready_line_;
  std::optional<Child> child_;
};

// A raw protocol connection, for speaking bad protocol on purpose.
class RawConn {
 public:
  explicit RawConn(const std::string& socket_path);
  ~RawConn();
  void send_raw(const std::string& bytes);
  void send_frame(const std::string& payload);
  json request(const json& req);  // send_frame + recv
  // Next reply, or nullopt when the broker closed the connection.
  std::optional<json> recv();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// Runs `argv` to completion; returns {exit status, stdout+stderr}.
std::pair<int, std::string> run_command(const std::vector<std::string>& argv);

std::uint64_t shmem_bytes();  // Shmem in /proc/meminfo
std::string read_file(const std::string& path);

}  // namespace modelpool::testing

#endif  // MODELPOOL_TESTS_INTEGRATION_BROKER_FIXTURE_HPP_
