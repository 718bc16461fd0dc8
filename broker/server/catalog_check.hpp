// File: broker/server/catalog_check.hpp
//
// The half of the `selfcheck` admin op that looks at the segment: the catalog
// (what a restarted broker would adopt) must say exactly what the pool says —
// every entry in its slot with its state, name, generation, extent, checksum
// and pin, and no other slot in use — and, on tmpfs, the data region holds
// exactly the memory of the pool's extents (more is a leak: an eviction or a
// failed load that was never punched, or a worker faulting in pages it does
// not hold). Event-loop thread only, like the pool and the catalog it reads.
#ifndef MODELPOOL_BROKER_SERVER_CATALOG_CHECK_HPP_
#define MODELPOOL_BROKER_SERVER_CATALOG_CHECK_HPP_

#include <string>
#include <vector>

#include "broker/pool/pool.hpp"
#include "broker/store/segment.hpp"

namespace modelpool::broker {

// One sentence per disagreement found (empty: the catalog and the pool agree).
std::vector<std::string> check_catalog(const Pool& pool, const Segment& segment);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_CATALOG_CHECK_HPP_
