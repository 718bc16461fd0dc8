// File: clientlib/tests/fake_broker.hpp
//
// A stand-in broker for the client library's own tests: speaks protocol v1
// (with the shared codec) on a worker and an admin socket in a scratch
// directory, serves models written into a scratch segment file, counts
// handles, and can be stopped and restarted (a broker restart: every
// connection closes and its handles are dropped) or made to misbehave (a
// rewriter replaces reply payloads). It checks nothing a real broker would
// validate - it is a protocol peer, not a model of the broker. Thread-safe.
#ifndef MODELPOOL_CLIENTLIB_TESTS_FAKE_BROKER_HPP_
#define MODELPOOL_CLIENTLIB_TESTS_FAKE_BROKER_HPP_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "shm/protocol/messages.hpp"

namespace modelpool::testing {

struct FakeModel {
  std::string name;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t generation = 1;
  std::uint64_t checksum = 0;
  std::string format = "raw";
};

class FakeBroker {
 public:
  // `page_size` is what hello reports (4096, or 2 MiB to test huge pages).
  explicit FakeBroker(std::uint64_t page_size = 4096);
  ~FakeBroker();
  FakeBroker(const FakeBroker&) = delete;
  FakeBroker& operator=(const FakeBroker&) = delete;

  std::string worker_socket() const { return dir_ + "/pool.sock"; }
  std::string admin_socket() const { return dir_ + "/pool.admin.sock"; }
  const std::string& segment_path() const { return segment_path_; }
  static constexpr std::uint64_t kSegmentSize = 64ULL << 20;

  // Writes `bytes` into the segment at the next 2 MiB boundary.
  const FakeModel& add_model(const std::string& name, std::string_view bytes,
                             const std::string& format = "raw");
  void set_generation(const std::string& name, std::uint64_t generation);

  void start();
  // Closes the listeners and every connection; handles are dropped.
  void stop();

  // f(request, normal reply payload) -> the payload to send instead; an
  // empty string closes the connection without a reply. A request that asks
  // for no reply (a release with "reply": false) has an empty normal
  // payload, and an empty result sends nothing.
  using Rewriter = std::function<std::string(const proto::Request&, const std::string&)>;
  void set_rewriter(Rewriter f);
  // The fields the admin op `op` replies with (list pages through `rows`).
  void set_admin_reply(const std::string& op, nlohmann::json fields);
  void set_list_rows(nlohmann::json rows, std::size_t page);

  int live_handles() const;
  int acquires() const;
  int releases() const;
  // Releases are sent without waiting for the reply: these wait (up to 10 s)
  // until the broker has handled enough of them; false on timeout.
  bool await_releases(int n) const;
  bool await_live_handles(int n) const;

 private:
  struct Conn {
    int fd = -1;
    bool admin = false;
    std::string buf;
  };

  void serve();
  void accept_on(int listen_fd, bool admin);
  bool serve_conn(Conn& conn);  // false: close it
  std::string reply_to(Conn& conn, const proto::Request& req);
  static bool wants_a_reply(const proto::Request& req);
  std::string worker_reply(Conn& conn, const proto::Request& req);
  std::string admin_reply(const proto::Request& req);
  void close_conn(Conn& conn);

  std::string dir_;
  std::string segment_path_;
  std::uint64_t page_size_;
  int segment_fd_ = -1;
  std::uint64_t next_offset_ = 2ULL << 20;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;  // handles_ or releases_ changed
  std::map<std::string, FakeModel> models_;
  std::map<std::uint64_t, int> handles_;  // handle -> connection fd
  std::uint64_t next_handle_ = 1;
  int acquires_ = 0;
  int releases_ = 0;
  Rewriter rewriter_;
  std::map<std::string, nlohmann::json> admin_replies_;
  nlohmann::json list_rows_ = nlohmann::json::array();
  std::size_t list_page_ = 100;

  int worker_listen_ = -1;
  int admin_listen_ = -1;
  int wake_[2] = {-1, -1};
  std::vector<Conn> conns_;  // serve thread only
  std::thread thread_;
};

}  // namespace modelpool::testing

#endif  // MODELPOOL_CLIENTLIB_TESTS_FAKE_BROKER_HPP_
