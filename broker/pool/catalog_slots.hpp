// File: broker/pool/catalog_slots.hpp
//
// Which catalog slots of the segment are taken. Like the extent allocator it
// lives in broker memory only and is rebuilt at adoption by reserve()-ing the
// slot of every adopted entry. The lowest free slot is handed out first, so
// the used part of the catalog stays dense. Not thread-safe.
#ifndef MODELPOOL_BROKER_POOL_CATALOG_SLOTS_HPP_
#define MODELPOOL_BROKER_POOL_CATALOG_SLOTS_HPP_

#include <cstdint>
#include <optional>
#include <set>

namespace modelpool::broker {

class CatalogSlots {
 public:
  explicit CatalogSlots(std::uint32_t capacity);

  // The lowest free slot, now taken; nullopt when all are taken.
  std::optional<std::uint32_t> allocate();
  // False (no change) if `slot` is out of range or already free.
  bool free(std::uint32_t slot);
  // Takes a specific slot (adoption). False (no change) if out of range or taken.
  bool reserve(std::uint32_t slot);

  bool in_use(std::uint32_t slot) const;
  std::uint32_t capacity() const { return capacity_; }
  std::uint32_t free_count() const { return static_cast<std::uint32_t>(free_.size()); }
  std::uint32_t used_count() const { return capacity_ - free_count(); }

 private:
  std::uint32_t capacity_;
  std::set<std::uint32_t> free_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_POOL_CATALOG_SLOTS_HPP_
