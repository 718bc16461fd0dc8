// File: tests/service/in_process_broker.hpp
//
// The broker's request path in process, without a daemon: a Service and its
// Dispatcher on a real segment in /dev/shm and a models directory of the
// test's files, on an io_context the test polls. Each client is a Session on
// one end of a socket pair; the test holds the other end and reads the
// replies. The loader is the caller's: the broker's own Loader, or a runner
// the test completes by hand (service_test.cc). Used by the Service's tests
// and the dispatcher fuzz target.
#ifndef MODELPOOL_TESTS_SERVICE_IN_PROCESS_BROKER_HPP_
#define MODELPOOL_TESTS_SERVICE_IN_PROCESS_BROKER_HPP_

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "broker/config.hpp"
#include "broker/server/dispatch.hpp"
#include "broker/server/service.hpp"
#include "broker/startup.hpp"
#include "broker/store/loader.hpp"
#include "broker/store/name_resolver.hpp"
#include "broker/store/segment.hpp"
#include "shm/protocol/frame.hpp"

namespace modelpool::broker::testing {

class InProcessBroker {
 public:
  struct Client {
    SessionPtr session;
    boost::asio::local::stream_protocol::socket peer;
    proto::FrameDecoder decoder;
  };

  // `config` gives the budget and limits; the models directory, the pool's
  // name and the segment are the harness's, named after `tag` and the pid.
  InProcessBroker(const std::string& tag, Config config, LoadRunner& loader)
      : config_(std::move(config)), loader_(loader) {
    const std::string unique = tag + "-" + std::to_string(::getpid());
    dir_ = "/tmp/mp-" + unique;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.models_dir = dir_;
    config_.pool = "mp" + unique;
    segment_.pool = config_.pool;
    segment_.data_bytes = config_.policy.budget * config_.offset_space_factor;
    segment_.catalog_capacity = config_.catalog_capacity;
    segment_.recreate = true;
    if (Status s = open(); !s.ok()) throw std::runtime_error("in-process broker: " + s.message());
  }
  ~InProcessBroker() {
    close();
    (void)Segment::remove(segment_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  InProcessBroker(const InProcessBroker&) = delete;
  InProcessBroker& operator=(const InProcessBroker&) = delete;

  // Writes `size` bytes that depend on `seed` to the models directory.
  void write(const std::string& name, std::size_t size, unsigned seed = 0) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 131 + size + seed);
    std::ofstream(dir_ + "/" + name, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(size));
  }

  std::unique_ptr<Client> connect(bool admin = false) {
    boost::asio::local::stream_protocol::socket ours(io_), theirs(io_);
    boost::asio::local::connect_pair(ours, theirs);
    theirs.non_blocking(true);
    ++sessions_;
    auto s = std::make_shared<Session>(
        std::move(ours), next_id_++, admin, config_.max_outbound_bytes,
        [this](const SessionPtr& p, std::string_view payload) { dispatcher_->handle(p, payload); },
        [this](Session& p) {
          service_->disconnect(p);
          --sessions_;
        });
    return std::make_unique<Client>(Client{std::move(s), std::move(theirs), {}});
  }

  // The replies `c` has received since the last call. A reply that is not a
  // frame of JSON is returned as a string holding what was wrong.
  std::vector<nlohmann::json> replies(Client& c) {
    char buf[65536];
    boost::system::error_code ec;
    for (;;) {
      const std::size_t n = c.peer.read_some(boost::asio::buffer(buf), ec);
      if (ec || n == 0) break;
      c.decoder.feed(buf, n);
    }
    std::vector<nlohmann::json> out;
    for (;;) {
      auto frame = c.decoder.next();
      if (!frame.ok()) {
        out.emplace_back("not a frame: " + frame.status().message());
        break;
      }
      if (!frame->has_value()) break;
      nlohmann::json j = nlohmann::json::parse(**frame, nullptr, false);
      out.push_back(j.is_discarded() ? nlohmann::json("not JSON: " + (*frame)->substr(0, 200))
                                     : std::move(j));
    }
    return out;
  }

  // Runs the handlers that are ready (loads that finished post theirs).
  void poll() {
    io_.poll();
    io_.restart();
  }

  // A broker restart on the same segment: the Service, store and dispatcher
  // go (every client must be gone first), and new ones adopt what the
  // segment's catalog holds, as modelpoold does at start.
  Status restart() {
    close();
    segment_.recreate = false;
    return open();
  }

  Service& service() { return *service_; }
  Dispatcher& dispatcher() { return *dispatcher_; }
  const Config& config() const { return config_; }
  boost::asio::io_context& io() { return io_; }
  const std::string& dir() const { return dir_; }
  std::size_t sessions() const { return sessions_; }

 private:
  Status open() {
    auto names = NameResolver::open(dir_);
    if (!names.ok()) return names.status();
    auto seg = Segment::open(segment_, ::getpid());
    if (!seg.ok()) return seg.status();
    names_ = std::make_unique<NameResolver>(std::move(names).value());
    const PoolConfig pc = pool_config(config_, **seg);
    store_ = std::make_unique<CatalogStore>(std::move(seg).value(), pc);
    if (Status s = adopt_segment(*store_, config_); !s.ok()) return s;
    service_ = std::make_unique<Service>(io_, config_, *store_, loader_, *names_);
    dispatcher_ = std::make_unique<Dispatcher>(*service_, config_, [this] { return sessions_; });
    return {};
  }
  void close() {
    dispatcher_.reset();
    service_.reset();
    store_.reset();
    names_.reset();
  }

  Config config_;
  LoadRunner& loader_;
  std::string dir_;
  SegmentOptions segment_;
  boost::asio::io_context io_;
  std::unique_ptr<NameResolver> names_;
  std::unique_ptr<CatalogStore> store_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::size_t sessions_ = 0;
  std::uint64_t next_id_ = 1;
};

}  // namespace modelpool::broker::testing

#endif  // MODELPOOL_TESTS_SERVICE_IN_PROCESS_BROKER_HPP_
