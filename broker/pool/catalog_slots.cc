// File: broker/pool/catalog_slots.cc
//
// A set of free slot numbers; taking the smallest keeps the catalog dense.
#include "broker/pool/catalog_slots.hpp"

namespace modelpool::broker {

CatalogSlots::CatalogSlots(std::uint32_t capacity) : capacity_(capacity) {
  for (std::uint32_t s = 0; s < capacity; ++s) free_.insert(free_.end(), s);
}

std::optional<std::uint32_t> CatalogSlots::allocate() {
  if (free_.empty()) return std::nullopt;
  const std::uint32_t slot = *free_.begin();
  free_.erase(free_.begin());
  return slot;
}

bool CatalogSlots::free(std::uint32_t slot) {
  if (slot >= capacity_) return false;
  return free_.insert(slot).second;
}

bool CatalogSlots::reserve(std::uint32_t slot) {
  if (slot >= capacity_) return false;
  return free_.erase(slot) == 1;
}

bool CatalogSlots::in_use(std::uint32_t slot) const {
  return slot < capacity_ && free_.count(slot) == 0;
}

}  // namespace modelpool::broker
