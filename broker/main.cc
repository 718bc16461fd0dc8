// File: broker/main.cc
//
// modelpoold: parses the configuration, takes the pool's lock (one broker
// per pool), sizes the budget, opens or re-adopts the segment, preloads,
// then serves the worker and admin sockets until SIGTERM/SIGINT.
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "broker/config.hpp"
#include "broker/logging.hpp"
#include "broker/origin/origins.hpp"
#include "broker/pool/pool.hpp"
#include "broker/segment_home.hpp"
#include "broker/server/metrics_http.hpp"
#include "broker/server/report_json.hpp"
#include "broker/server/server.hpp"
#include "broker/server/service.hpp"
#include "broker/service_manager.hpp"
#include "broker/startup.hpp"
#include "broker/store/loader.hpp"
#include "broker/store/name_resolver.hpp"
#include "broker/store/segment.hpp"
#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {
namespace {

int fail(const std::string& sentence) {
  std::fprintf(stderr, "modelpoold: %s\n", sentence.c_str());
  return 1;
}

// Until dismissed, removes the segment this start created when the start
// fails. An adopted segment (a previous run's, holding models) is kept.
class CreatedSegmentCleanup {
 public:
  explicit CreatedSegmentCleanup(const SegmentOptions& options) : options_(options) {}
  CreatedSegmentCleanup(const CreatedSegmentCleanup&) = delete;
  CreatedSegmentCleanup& operator=(const CreatedSegmentCleanup&) = delete;
  ~CreatedSegmentCleanup() {
    if (armed_) (void)Segment::remove(options_);
  }
  void arm(const Segment& seg) { armed_ = !seg.adopted(); }
  void dismiss() { armed_ = false; }

 private:
  const SegmentOptions& options_;
  bool armed_ = false;
};

// Raises RLIMIT_NOFILE's soft limit to its hard limit and keeps
// --max-clients within it, leaving kFdReserve descriptors for the segment,
// the lock, the loader, io_uring, the log and the metrics connections.
void fit_descriptors(Config& config) {
  // The metrics port takes up to --metrics-max-clients more.
  const std::uint64_t kFdReserve =
      128 + (config.metrics_addr.empty() ? 0 : config.metrics_max_clients);
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised{lim.rlim_max, lim.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  const std::uint64_t soft = lim.rlim_cur;
  const std::uint64_t fit = soft > kFdReserve + 1 ? soft - kFdReserve : 1;
  if (config.max_clients > fit) {
    spdlog::warn("--max-clients {} lowered to {}: the descriptor limit is {} (ulimit -n)",
                 config.max_clients, fit, soft);
    config.max_clients = fit;
  }
}

// STATUS= for the service manager: what `systemctl status` shows.
std::string serving_status(const Service& service) {
  const StatsReport s = service.stats(0);
  return "serving pool " + s.pool + ": " + std::to_string(s.models.size()) + " model(s), " +
         units::format_bytes(s.bytes_used) + " of " + units::format_bytes(s.bytes_budget);
}

int run(Config& config) {
  fit_descriptors(config);
  if (config.run_dir.empty()) config.run_dir = layout::default_run_dir();
  std::error_code ec;
  if (!std::filesystem::is_directory(config.models_dir, ec)) {
    return fail("models directory " + config.models_dir + " does not exist or is not a directory");
  }
  auto lock = acquire_pool_lock(config);
  if (!lock.ok()) return fail(lock.status().message());
  // Destroyed after the segment, before the lock: unmounts an emptied tmpfs.
  auto home = SegmentHome::prepare(&config);
  if (!home.ok()) return fail(home.status().message());
  auto names = NameResolver::open(config.models_dir);
  if (!names.ok()) return fail(names.status().message());
  auto budget = decide_budget(config);
  if (!budget.ok()) return fail(budget.status().message());
  config.policy.budget = *budget;

  // The hello reply tells workers this path: it must not depend on our cwd.
  if (!config.segment_dir.empty()) {
    config.segment_dir = std::filesystem::absolute(config.segment_dir).lexically_normal().string();
  }
  SegmentOptions so;
  so.pool = config.pool;
  so.segment_dir = config.segment_dir;
  so.data_bytes = config.policy.budget * config.offset_space_factor;
  so.catalog_capacity = config.catalog_capacity;
  so.recreate = config.recreate;
  auto segment = Segment::open(so, ::getpid());
  if (!segment.ok()) return fail(segment.status().message());
  Segment& seg = **segment;
  CreatedSegmentCleanup cleanup(so);  // destroyed after the server, before the lock
  cleanup.arm(seg);
  if (Status s = share_segment(config, seg); !s.ok()) return fail(s.message());

  CatalogStore store(std::move(*segment), pool_config(config, seg));
  if (Status s = adopt_segment(store, config); !s.ok()) return fail(s.message());

  // One thread runs the loop, and every socket and timer lives on it; the
  // loader threads only post() to it, which keeps the scheduler's lock. So
  // the reactor may skip its per-socket locks: about 0.2 us of a 6.5 us
  // warm acquire + release with broker and worker on one CPU
  // (docs/benchmarks.md, scenario 4).
  boost::asio::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  Loader loader(Loader::Options{static_cast<unsigned>(config.loader_threads), config.chunk_bytes,
                                static_cast<unsigned>(config.queue_depth), config.direct_io});
  // Remote origins and the disk tier: --origin, --disk-cache, and the
  // manifest's origins (which a SIGHUP may add).
  auto origins =
      Origins::create(origin_options(config), [](const char* n) { return std::getenv(n); });
  if (!origins.ok()) return fail(origins.status().message());
  Service service(io, config, store, loader, names.value());
  service.set_origins(origins->get());
  Server server(io, config, service);
  ServiceManager manager(io);
  manager.start_watchdog();  // pings through the preloads too
  if (Status s = load_manifest(config, service); !s.ok()) return fail(s.message());
  manager.status("preloading");
  if (Status s = preload_models(io, service, config); !s.ok()) return fail(s.message());

  const std::string worker_path = layout::worker_socket_path(config.run_dir, config.pool);
  const std::string admin_path = layout::admin_socket_path(config.run_dir, config.pool);
  if (Status s = server.listen(worker_path, admin_path); !s.ok()) return fail(s.message());

  bool started = false;  // the segment adopted, preloads in, the sockets listening
  MetricsServer metrics(
      io,
      [&] {
        service.collect_all_releases();  // the references it shows
        return to_json(service.stats(server.clients()));
      },
      [&] { return started && !service.shutting_down(); },
      {config.metrics_max_clients, std::chrono::seconds(config.metrics_idle_timeout_s)});
  if (!config.metrics_addr.empty()) {
    if (Status s = metrics.listen(config.metrics_addr); !s.ok()) return fail(s.message());
    // Port 0 picks a free port: the log and `config` show the one bound.
    config.metrics_addr.replace(config.metrics_addr.rfind(':') + 1, std::string::npos,
                                std::to_string(metrics.port()));
    spdlog::info("metrics on http://{}/metrics", config.metrics_addr);
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& err, int sig) {
        if (err) return;
        if (sig == SIGHUP) {
          manager.reloading();
          auto reloaded = reload_manifest(config, service);
          if (reloaded.ok()) {
            spdlog::info("SIGHUP: {}", *reloaded);
          } else {
            spdlog::warn("SIGHUP: {}", reloaded.status().message());
          }
          manager.ready(serving_status(service));
          signals.async_wait(on_signal);
          return;
        }
        spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        manager.stopping();
        metrics.stop();
        server.shutdown([&] { io.stop(); });
      };
  signals.async_wait(on_signal);
  cleanup.dismiss();  // started: from here the files stay for a restart
  (*lock)->keep();

  spdlog::info(
      "modelpoold {} serving pool \"{}\": models {}, budget {}, segment {} ({} offset space, "
      "{} pages), sockets {} and {}",
      MODELPOOL_VERSION, config.pool, config.models_dir, units::format_bytes(config.policy.budget),
      seg.path(), units::format_bytes(seg.size()), units::format_bytes(seg.page_size()),
      worker_path, admin_path);
  std::string metrics_note;
  if (!config.metrics_addr.empty())
    metrics_note = ", metrics port " + std::to_string(metrics.port());
  std::printf("modelpoold: ready (pool %s, worker socket %s%s)\n", config.pool.c_str(),
              worker_path.c_str(), metrics_note.c_str());
  std::fflush(stdout);
  started = true;
  manager.ready(serving_status(service));
  io.run();

  spdlog::info("stopped; segment {} {}", seg.path(),
               config.remove_on_exit ? "removed" : "kept for a restart");
  if (config.remove_on_exit) (void)Segment::remove(so);
  return 0;
}

}  // namespace
}  // namespace modelpool::broker

int main(int argc, char** argv) {
  using namespace modelpool::broker;
  std::signal(SIGPIPE, SIG_IGN);
  Config config;
  auto outcome = parse_command_line(argc, argv, &config, std::getenv("MODELPOOL_CONFIG"));
  if (!outcome.ok()) {
    std::fprintf(stderr, "modelpoold: %s\n", outcome.status().message().c_str());
    return 2;
  }
  if (*outcome == ParseOutcome::kHelp) {
    std::fputs(help_text().c_str(), stdout);
    return 0;
  }
  if (*outcome == ParseOutcome::kPrintConfig) {
    std::fputs(to_toml(config).c_str(), stdout);
    return 0;
  }
  if (*outcome == ParseOutcome::kVersion) {
    std::printf("modelpoold %s\n", MODELPOOL_VERSION);
    return 0;
  }
  setup_logging(config);
  return run(config);
}
