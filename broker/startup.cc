// File: broker/startup.cc
#include "broker/startup.hpp"

#include <fcntl.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "broker/store/fs_probe.hpp"
#include "broker/system_info.hpp"
#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {

namespace {

// On hugetlbfs every byte of the segment, its header and catalog included,
// is a huge page taken from the kernel's pool, and nothing is left to
// chance: the pool needs (budget + front) in pages, of which a surviving
// segment of this pool already holds `held` bytes.
Result<std::uint64_t> hugetlbfs_budget(const Config& config, const std::string& dir,
                                       const HugetlbSpace& space, std::uint64_t held) {
  const std::uint64_t page = space.page_size;
  const std::uint64_t unit = std::max(layout::kDefaultAlignment, page);
  const std::uint64_t front =
      layout::compute_geometry(config.catalog_capacity, unit, unit).data_offset;
  const std::uint64_t have = space.free_pages() + held / page;
  const std::string can_get =
      dir + " can get " + std::to_string(have) + " (the kernel's pool has " +
      std::to_string(space.pool_free_pages) + " free and unreserved, " +
      (space.mount_free_pages
           ? "the mount's size= limit leaves " + std::to_string(*space.mount_free_pages)
           : std::string("the mount has no size= limit")) +
      (held != 0 ? ", this pool's segment holds " + std::to_string(held / page) : "") + ")";
  const bool limit_binds =
      space.mount_free_pages && *space.mount_free_pages < space.pool_free_pages;
  const std::string where =
      limit_binds ? " pages to the mount's size= (mount -o remount,size=... " + dir + ")"
                  : " huge pages (/proc/sys/vm/nr_hugepages, or scripts/hugepages.sh)";
  if (config.policy.budget != 0) {
    const std::uint64_t budget_pages = (config.policy.budget + page - 1) / page;
    const std::uint64_t need = budget_pages + front / page;
    if (need <= have) return config.policy.budget;
    return error(ErrorCode::kBadRequest,
                 "the budget --memory " + units::format_bytes(config.policy.budget) +
                     " does not fit in the free huge pages of " + dir + ": the pool needs " +
                     std::to_string(need) + " pages of " + units::format_bytes(page) + " (" +
                     std::to_string(budget_pages) + " for the budget, " +
                     std::to_string(front / page) + " for the segment's header and catalog), " +
                     can_get + "; add at least " + std::to_string(need - have) + " more" + where +
                     " or lower --memory");
  }
  // The operator set these pages aside (and MemAvailable does not count
  // them): the default budget is all the mount can get.
  const std::uint64_t budget = (have * page > front ? have * page - front : 0) / unit * unit;
  if (budget < (16ULL << 20)) {
    return error(ErrorCode::kBadRequest,
                 "too few free huge pages for a pool in " + dir + ": pages of " +
                     units::format_bytes(page) + ", " + can_get + ", the segment's header and " +
                     "catalog take " + std::to_string(front / page) + "; add more" + where);
  }
  return budget;
}

}  // namespace

Result<std::uint64_t> decide_budget(const Config& config) {
  const std::string dir = config.segment_dir.empty() ? "/dev/shm" : config.segment_dir;
  auto free = filesystem_free_bytes(dir);
  if (!free.ok()) return free.status();
  std::uint64_t held = 0;  // what a surviving segment of this pool already occupies
  struct stat st {};       // lstat: a symlink there is refused later, never followed
  if (::lstat(layout::segment_path(config.segment_dir, config.pool).c_str(), &st) == 0 &&
      S_ISREG(st.st_mode)) {
    held = static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  auto huge = hugetlbfs_space(dir);
  if (!huge.ok()) return huge.status();
  if (*huge) return hugetlbfs_budget(config, dir, **huge, held);
  const std::uint64_t cap = *free + held;
  if (config.policy.budget != 0) {
    if (config.policy.budget > cap) {
      return error(ErrorCode::kBadRequest,
                   "the budget --memory " + units::format_bytes(config.policy.budget) +
                       " is larger than the free space of " + dir + " (" +
                       units::format_bytes(cap) + "); lower --memory or enlarge " + dir +
                       " (e.g. mount -o remount,size=... " + dir + ")");
    }
    return config.policy.budget;
  }
  const std::uint64_t want = read_meminfo().available / 10 * 7;
  const std::uint64_t budget = std::min(want, cap) / (2ULL << 20) * (2ULL << 20);
  if (budget < (16ULL << 20)) {
    return error(ErrorCode::kBadRequest,
                 dir + " has only " + units::format_bytes(cap) +
                     " free, too little for a pool; enlarge it or use --segment-dir");
  }
  return budget;
}

Status share_segment(const Config& config, const Segment& segment) {
  auto gid = worker_group(config);
  if (!gid.ok()) return gid.status();
  if (*gid == static_cast<gid_t>(-1)) return {};
  if (::fchown(segment.fd(), static_cast<uid_t>(-1), *gid) != 0) {
    return error(ErrorCode::kInternal, "cannot give segment " + segment.path() + " to group " +
                                           config.group + ": " + std::strerror(errno));
  }
  return {};
}

PoolConfig pool_config(const Config& config, const Segment& segment) {
  PoolConfig pc = config.policy;
  pc.data_begin = segment.data_offset();
  pc.data_end = segment.size();
  pc.alignment = segment.header().alignment;
  pc.page_size = segment.page_size();
  pc.catalog_capacity = static_cast<std::uint32_t>(segment.header().catalog_capacity);
  return pc;
}

Status adopt_segment(CatalogStore& store, const Config& config) {
  if (!store.segment().adopted()) return {};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  const auto adoption =
      store.adopt(now + static_cast<std::int64_t>(config.adopt_grace_s) * 1000000000);
  for (const auto& r : adoption.refused) {
    spdlog::warn("not adopting {} generation {}: {}", r.name, r.generation, r.why);
  }
  const auto& report = store.segment().adoption_report();
  spdlog::info(
      "adopted segment of pool \"{}\": {} model(s), {} resident, no reload needed; dropped {} "
      "half-loaded and {} invalid entries",
      config.pool, adoption.kept, units::format_bytes(adoption.bytes), report.loading,
      report.invalid);
  return {};
}

Status load_manifest(const Config& config, Service& service) {
  if (config.manifest.empty()) return {};
  auto m = Manifest::load(config.manifest);
  if (!m.ok()) return m.status();
  spdlog::info("manifest {}: {} model(s)", config.manifest, m->entries().size());
  service.set_manifest(std::make_shared<const Manifest>(std::move(m).value()));
  return {};
}

Status preload_models(boost::asio::io_context& io, Service& service, const Config& config) {
  std::vector<std::pair<std::string, bool>> todo;  // name, pin
  for (const auto& name : config.preload) todo.emplace_back(name, false);
  if (const Manifest* m = service.manifest()) {
    for (const auto& [name, e] : m->entries()) {
      if (e.preload) todo.emplace_back(name, e.pin);
    }
  }
  if (todo.empty()) return {};
  auto guard = boost::asio::make_work_guard(io);
  std::size_t pending = todo.size();
  Status first_error;
  for (const auto& [name, pin] : todo) {
    service.preload(name, pin, [&, name = name](const Status& s) {
      if (!s.ok() && first_error.ok()) {
        first_error = Status(s.code(), "cannot preload \"" + name + "\": " + s.message());
      }
      if (s.ok()) spdlog::info("preloaded {}", name);
      if (--pending == 0) guard.reset();
    });
  }
  // Until the preloads are answered, not until the loop runs dry: timers
  // (the service's reaping of retained entries) may stay armed for long.
  while (pending > 0) io.run_one();
  io.restart();
  return first_error;
}

Result<std::string> reload_manifest(const Config& config, Service& service) {
  if (config.manifest.empty()) return std::string("no manifest in use; nothing to reload");
  auto fresh = Manifest::load(config.manifest);
  if (!fresh.ok()) {
    return Status(fresh.status().code(),
                  "manifest not reloaded (keeping the old one): " + fresh.status().message());
  }
  auto next = std::make_shared<const Manifest>(std::move(fresh).value());
  std::string what = service.manifest() ? next->diff(*service.manifest()) : "loaded";
  service.set_manifest(next);
  for (const auto& [name, e] : next->entries()) {
    if (!e.preload && !e.pin) continue;
    service.preload(name, e.pin, [name = name](const Status& s) {
      if (!s.ok()) spdlog::warn("manifest preload of {} failed: {}", name, s.message());
    });
  }
  return std::string("manifest " + config.manifest + " reloaded: " + what);
}

Origins::Options origin_options(const Config& config) {
  Origins::Options o;
  o.origins = config.origins;
  o.transfer.ca_file = config.origin_ca;
  o.transfer.connections = static_cast<unsigned>(config.origin_connections);
  o.transfer.part_bytes = config.origin_part;
  o.transfer.retries = static_cast<unsigned>(config.origin_retries);
  o.transfer.stall_timeout_s = config.origin_timeout_s;
  o.threads = 4;
  o.disk_dir = config.disk_cache;
  o.disk_budget = config.disk_budget;
  return o;
}

}  // namespace modelpool::broker
