// File: bench/limits/pingpong_bench.cc
//
// mp_bench_pingpong: the floor for any request/reply over a Unix socket.
// T client threads in this process each own one SOCK_STREAM socketpair whose
// other end is served by an echo thread in a forked child process, and send
// `--size`-byte messages back and forth for `--seconds`.
//   mp_bench_pingpong [--threads 1] [--size 64] [--seconds 1]
//                     [--client-cpu C --server-cpu S]
// With the CPUs given, this process runs on C and the echo process on S: the
// same CPU measures a round trip as two context switches, two CPUs as two
// cross-CPU wake-ups (the control scenario measures modelpool both ways).
// Emits pingpong/{p50,p99,p999} (ns, per round trip, all threads pooled)
// and pingpong/ops (round trips per second, all threads).
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "bench/common/bench_util.hpp"

namespace mb = modelpool::bench;

namespace {

bool full_io(int fd, char* buf, std::size_t n, bool writing) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = writing ? ::write(fd, buf + done, n - done) : ::read(fd, buf + done, n - done);
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

void pin_to(const mb::Args& args, const char* key) {
  if (!args.has(key)) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(args.num(key, 0)), &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) mb::die_errno("sched_setaffinity");
}

void echo_loop(int fd, std::size_t size) {
  std::vector<char> buf(size);
  while (full_io(fd, buf.data(), size, false) && full_io(fd, buf.data(), size, true)) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  mb::Args args(argc, argv);
  const int threads = static_cast<int>(args.num("threads", 1));
  const auto size = static_cast<std::size_t>(args.size("size", 64));
  const auto duration = static_cast<std::int64_t>(args.num("seconds", 1.0) * 1e9);

  std::vector<int> ours(threads);
  std::vector<int> theirs(threads);
  for (int t = 0; t < threads; ++t) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) mb::die_errno("socketpair");
    ours[t] = sv[0];
    theirs[t] = sv[1];
  }
  const pid_t child = ::fork();
  if (child < 0) mb::die_errno("fork");
  if (child == 0) {
    pin_to(args, "server-cpu");  // before the echo threads start: they inherit it
    for (int fd : ours) ::close(fd);
    std::vector<std::thread> servers;
    for (int fd : theirs) servers.emplace_back(echo_loop, fd, size);
    for (auto& s : servers) s.join();
    ::_exit(0);
  }
  for (int fd : theirs) ::close(fd);
  pin_to(args, "client-cpu");

  std::vector<std::vector<std::int64_t>> lat(threads);
  std::atomic<bool> go{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      std::vector<char> buf(size, 'x');
      lat[t].reserve(1 << 20);
      while (!go.load()) std::this_thread::yield();
      const std::int64_t end = mb::now_ns() + duration;
      for (std::int64_t now = mb::now_ns(); now < end;) {
        if (!full_io(ours[t], buf.data(), size, true) ||
            !full_io(ours[t], buf.data(), size, false)) {
          mb::die("ping-pong peer closed");
        }
        const std::int64_t after = mb::now_ns();
        lat[t].push_back(after - now);
        now = after;
      }
    });
  }
  const std::int64_t t0 = mb::now_ns();
  go = true;
  for (auto& c : clients) c.join();
  const double secs = static_cast<double>(mb::now_ns() - t0) / 1e9;
  for (int fd : ours) ::close(fd);
  ::waitpid(child, nullptr, 0);

  std::vector<std::int64_t> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  const nlohmann::json labels = {{"threads", threads}, {"size", size}};
  mb::emit("pingpong", "ops", static_cast<double>(all.size()) / secs, "ops/s", labels);
  mb::emit("pingpong", "p50", mb::percentile(all, 0.50), "ns", labels);
  mb::emit("pingpong", "p99", mb::percentile(all, 0.99), "ns", labels);
  mb::emit("pingpong", "p999", mb::percentile(all, 0.999), "ns", labels);
  return 0;
}
