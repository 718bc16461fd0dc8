// File: broker/pool/pool_config.hpp
//
// What a Pool is configured with: the budget and how it is kept (from the
// command line, broker/config.hpp holds one), and the segment's geometry
// (filled in from the segment at start, pool_config() in broker/startup.hpp).
#ifndef MODELPOOL_BROKER_POOL_POOL_CONFIG_HPP_
#define MODELPOOL_BROKER_POOL_POOL_CONFIG_HPP_

#include <cstdint>
#include <string>

#include "shm/layout/segment_layout.hpp"

namespace modelpool::broker {

struct PoolConfig {
  std::uint64_t budget = 0;      // bytes of memory the entries may hold (footprints)
  double high_watermark = 0.85;  // fraction of budget
  double low_watermark = 0.70;
  std::uint64_t max_model_size = 0;            // 0 = budget
  std::string eviction = "lru";                // a name from eviction_policy_names()
  std::uint64_t data_begin = 0, data_end = 0;  // offset space of extents
  std::uint64_t alignment = layout::kDefaultAlignment;
  // The segment's page size: an entry holds its size rounded up to it (4 KiB
  // on a tmpfs, 2 MiB on huge pages), not its whole extent.
  std::uint64_t page_size = 4096;
  std::uint32_t catalog_capacity = 16384;  // slots
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_POOL_POOL_CONFIG_HPP_
