// File: shm/layout/segment_layout.cc
#include "shm/layout/segment_layout.hpp"

#include <chrono>
#include <cstring>

namespace modelpool::layout {

std::string_view to_string(Format f) {
  switch (f) {
    case Format::kSafetensors:
      return "safetensors";
    case Format::kGguf:
      return "gguf";
    case Format::kRaw:
      break;
  }
  return "raw";
}

Geometry compute_geometry(std::uint64_t capacity, std::uint64_t data_bytes,
                          std::uint64_t alignment) {
  Geometry g{};
  g.alignment = alignment;
  g.catalog_offset = kHeaderBytes;
  g.catalog_capacity = capacity;
  g.data_offset = align_up(g.catalog_offset + capacity * sizeof(CatalogEntry), alignment);
  g.segment_size = g.data_offset + align_up(data_bytes, alignment);
  return g;
}

void init_header(SegmentHeader* h, std::string_view pool, const Geometry& g, std::int64_t pid) {
  std::memset(h, 0, sizeof *h);
  std::memcpy(h->magic, kMagic, sizeof kMagic);
  h->layout_version = kLayoutVersion;
  h->header_bytes = sizeof(SegmentHeader);
  std::memcpy(h->pool_name, pool.data(), std::min(pool.size(), sizeof h->pool_name - 1));
  h->created_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  h->broker_pid = pid;
  h->segment_size = g.segment_size;
  h->alignment = g.alignment;
  h->catalog_offset = g.catalog_offset;
  h->catalog_capacity = g.catalog_capacity;
  h->data_offset = g.data_offset;
  h->entry_bytes = sizeof(CatalogEntry);
}

Status validate_header(const SegmentHeader& h, std::string_view pool, std::uint64_t mapped_size) {
  auto bad = [](std::string why) {
    return error(ErrorCode::kInternal, "incompatible segment: " + why);
  };
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    return bad("bad magic (not a modelpool segment)");
  if (h.layout_version != kLayoutVersion) {
    return bad("layout version " + std::to_string(h.layout_version) + ", this broker speaks " +
               std::to_string(kLayoutVersion));
  }
  if (h.header_bytes != sizeof(SegmentHeader) || h.entry_bytes != sizeof(CatalogEntry)) {
    return bad("header or catalog entry size differs");
  }
  if (std::string_view(h.pool_name, strnlen(h.pool_name, sizeof h.pool_name)) != pool) {
    return bad("it belongs to pool \"" +
               std::string(h.pool_name, strnlen(h.pool_name, sizeof h.pool_name)) + "\"");
  }
  if (h.segment_size != mapped_size) return bad("recorded size differs from the file size");
  if (h.alignment == 0 || (h.alignment & (h.alignment - 1)) != 0) return bad("bad alignment");
  if (h.catalog_offset < kHeaderBytes ||
      h.catalog_offset + h.catalog_capacity * sizeof(CatalogEntry) > h.data_offset ||
      h.data_offset > h.segment_size || h.data_offset % h.alignment != 0) {
    return bad("catalog or data region out of bounds");
  }
  return {};
}

}  // namespace modelpool::layout
