// File: broker/startup.hpp
//
// The steps modelpoold takes before it serves: the per-pool lock (run_dir.hpp), the memory
// budget, the pool configuration, re-adoption of a surviving segment and
// preloading. Each returns a Status whose message is the one sentence the
// operator sees when the broker refuses to start.
#ifndef MODELPOOL_BROKER_STARTUP_HPP_
#define MODELPOOL_BROKER_STARTUP_HPP_

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "broker/config.hpp"
#include "broker/origin/origins.hpp"
#include "broker/pool/pool.hpp"
#include "broker/run_dir.hpp"
#include "broker/server/service.hpp"
#include "broker/store/catalog_store.hpp"
#include "broker/store/segment.hpp"

namespace modelpool::broker {

// With --group, gives the segment file to that group, so that its members
// (who may use the worker socket) can map it read-only (mode 0640).
Status share_segment(const Config& config, const Segment& segment);

// --memory, or 70% of MemAvailable; never more than the segment
// filesystem's free space (plus what an existing segment already holds).
// On hugetlbfs: the free huge pages the mount can get (hugetlbfs_space),
// less the segment's header and catalog; the default takes them all.
Result<std::uint64_t> decide_budget(const Config& config);

PoolConfig pool_config(const Config& config, const Segment& segment);

// Re-adopts the READY entries of a surviving segment into the store's pool.
Status adopt_segment(CatalogStore& store, const Config& config);

// Reads --manifest (when given) into `service`; a broken one is an error
// naming the line and the reason.
Status load_manifest(const Config& config, Service& service);

// The origins' and disk tier's settings from the configuration.
Origins::Options origin_options(const Config& config);

// Loads --preload models and manifest entries marked preload (pinning those
// marked pin) before serving; runs `io` until they are resident. A failure
// stops the broker.
Status preload_models(boost::asio::io_context& io, Service& service, const Config& config);

// SIGHUP: re-reads the manifest when one is in use, swaps it in when it
// parses (keeping the old one otherwise), starts loading new preload
// entries, and returns a line saying what changed, or why it kept the old one.
Result<std::string> reload_manifest(const Config& config, Service& service);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STARTUP_HPP_
