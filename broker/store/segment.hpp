// File: broker/store/segment.hpp
//
// The pool's one shared-memory segment, as the broker (its only writer) sees
// it: creating or adopting it, reserving and punching extents, and publishing
// catalog entries. The header and catalog [0, data_offset) are mapped
// read-write; extent bytes are written through fd() (see loader.hpp) and
// the rest of an extent is taken with reserve(), so a full filesystem is an
// error from a write or from reserve(), never a SIGBUS. (On hugetlbfs, which
// has no write(), the loader maps the one extent it fills, after reserve()
// has secured its pages.)
//
// Thread safety: reserve() and release() may be called from any thread
// (they are fallocate calls on disjoint ranges). Everything else, including
// the publish_* calls, belongs to one thread (the broker's event loop).
#ifndef MODELPOOL_BROKER_STORE_SEGMENT_HPP_
#define MODELPOOL_BROKER_STORE_SEGMENT_HPP_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/pool/entry_record.hpp"
#include "shm/layout/segment_layout.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

struct SegmentOptions {
  std::string pool;              // e.g. "modelpool"; must pass layout::validate_pool_name
  std::string segment_dir;       // "" -> /dev/shm/POOL (Boost shared_memory_object);
                                 // else DIR/POOL.segment (Boost file_mapping)
  std::uint64_t data_bytes = 0;  // offset space for extents (sparse: may exceed RAM)
  std::uint64_t catalog_capacity = 16384;
  bool recreate = false;  // discard an existing segment instead of adopting it
  unsigned mode = 0640;   // permission bits of a newly created segment
};

class Segment {
 public:
  // What the last adopt_entries() did, for the broker's log line.
  struct AdoptionReport {
    std::size_t ready = 0;            // entries kept
    std::size_t loading = 0;          // half-loaded entries dropped
    std::size_t invalid = 0;          // READY entries dropped: out of bounds or overlapping
    std::uint64_t punched_bytes = 0;  // data-region bytes outside kept extents (holes punched)
  };

  // Creates the segment, or adopts an existing compatible one. An incompatible
  // or corrupt one is an error (kInternal, message says what is wrong and how
  // to discard it) unless options.recreate. A zero-length file (a creation
  // that crashed before writing anything) is re-initialized. On adoption the
  // existing geometry is kept (options.data_bytes/catalog_capacity are
  // ignored) and header().broker_pid is set to `pid`.
  // Errors: kInvalidName (bad pool), kBadRequest (bad sizes), kInternal.
  static Result<std::unique_ptr<Segment>> open(const SegmentOptions& options, std::int64_t pid);
  // Unlinks the segment (no-op when absent). Mappings and fds stay valid.
  static Status remove(const SegmentOptions& options);

  ~Segment();  // unmaps and closes; never removes
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  bool adopted() const { return adopted_; }
  const layout::SegmentHeader& header() const { return *header_; }
  const std::string& path() const { return path_; }  // workers open it O_RDONLY
  int fd() const { return fd_; }                     // read-write
  std::uint64_t size() const { return header_->segment_size; }
  std::uint64_t data_offset() const { return header_->data_offset; }
  std::uint64_t alignment() const { return header_->alignment; }
  std::uint32_t catalog_capacity() const {
    return static_cast<std::uint32_t>(header_->catalog_capacity);
  }
  // Page size of the filesystem holding the segment: 4 KiB on plain tmpfs,
  // 2 MiB on a huge=always/within_size tmpfs, the huge page size on hugetlbfs.
  std::uint64_t page_size() const { return page_size_; }
  bool hugetlbfs() const { return hugetlbfs_; }  // no write(): the loader maps

  // Allocates the memory of [offset, offset+len) (fallocate). Must lie in the
  // data region. ENOSPC -> kPoolFull "filesystem full: ..."; else kInternal.
  Status reserve(std::uint64_t offset, std::uint64_t len);
  // Returns the memory of [offset, offset+len) to the OS at once (punch hole).
  // Out-of-range or failing calls are ignored (the bytes stay allocated).
  void release(std::uint64_t offset, std::uint64_t len);
  // Whether a worker maps any byte of [offset, offset+len): workers hold an
  // OFD read lock (F_OFD_SETLK, F_RDLCK) on every extent they hold, through
  // their own descriptor, and the kernel drops it when they release or die,
  // so it outlives a broker that crashes. Probed with F_OFD_GETLK through
  // fd(), which holds no locks. A probe that fails counts as mapped: the
  // bytes are kept rather than risked. Any thread.
  bool mapped(std::uint64_t offset, std::uint64_t len) const;

  // Catalog. `slot` < catalog_capacity(). Fields are written while the entry
  // is not READY and the state is stored last with release ordering, so a
  // broker killed at any instant leaves either the old or the new state.
  // publish_loading: any state -> LOADING (a READY slot goes through FREE),
  // at r.slot, with r's name, generation, extent, source and pin.
  void publish_loading(const EntryRecord& r);
  // LOADING -> READY; loaded_unix_ns is taken from the clock.
  void publish_ready(std::uint32_t slot, std::uint64_t checksum, layout::Format format,
                     std::uint64_t load_ns);
  void publish_pinned(std::uint32_t slot, bool pinned);
  void publish_free(std::uint32_t slot);

  // What slot `slot` of the catalog holds now, for the self-check (which
  // compares it with the pool). `state` is kFree for an out-of-range slot.
  EntryRecord slot_view(std::uint32_t slot) const;
  // Bytes of memory the data region holds on tmpfs — pages reserved or
  // written — from cachestat(2). kNotFound when that cannot be told (not
  // tmpfs, or a kernel before 6.5), kInternal when the call fails.
  Result<std::uint64_t> data_bytes_held() const;

  // Adoption: returns every valid READY entry, marks every other entry FREE
  // and punches every byte of the data region not covered by a kept extent,
  // so nothing a crashed broker left behind stays resident.
  std::vector<EntryRecord> adopt_entries();
  const AdoptionReport& adoption_report() const { return report_; }

 private:
  struct Backing;  // the Boost.Interprocess objects
  Segment() = default;
  static Result<std::unique_ptr<Segment>> create(const SegmentOptions& options,
                                                 const std::string& path, std::int64_t pid);
  static Result<std::unique_ptr<Segment>> adopt(const SegmentOptions& options,
                                                const std::string& path, std::int64_t pid);
  Status initialize(const SegmentOptions& options, std::int64_t pid);
  Status map_front(std::uint64_t bytes);
  Status probe_filesystem();
  layout::CatalogEntry& entry(std::uint32_t slot);
  static EntryRecord record_of(std::uint32_t slot, const layout::CatalogEntry& e,
                               layout::EntryState state);
  void punch_gaps(std::vector<EntryRecord>& kept);

  std::unique_ptr<Backing> backing_;
  layout::SegmentHeader* header_ = nullptr;
  std::string path_;
  int fd_ = -1;
  std::uint64_t page_size_ = 4096;
  bool hugetlbfs_ = false;
  bool adopted_ = false;
  AdoptionReport report_;
};

// Free space of the filesystem holding `path` (a directory or a file):
// statvfs f_bavail * f_frsize; on hugetlbfs the free huge pages it can still
// get (hugetlbfs_space in fs_probe.hpp). For the budget check at start.
Result<std::uint64_t> filesystem_free_bytes(const std::string& path);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_SEGMENT_HPP_
