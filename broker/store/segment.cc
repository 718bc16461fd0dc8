// File: broker/store/segment.cc
//
// Creating, adopting and removing the segment, and reserving/punching its
// extents (see segment.hpp). The catalog half of Segment is in
// segment_catalog.cc. Boost.Interprocess opens and maps; its exceptions are
// caught here and become Status.
#include "broker/store/segment.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstring>
#include <optional>

#include "broker/store/errno_text.hpp"
#include "broker/store/fs_probe.hpp"
#include "shm/layout/ownership.hpp"
#include "shm/layout/paths.hpp"
#include "shm/units/sizes.hpp"

namespace modelpool::broker {

namespace bip = boost::interprocess;

struct Segment::Backing {
  std::optional<bip::shared_memory_object> shm;
  std::optional<bip::file_mapping> file;
  bip::mapped_region front;  // [0, data_offset)
};

namespace {

constexpr std::uint64_t kMaxCatalogCapacity = 1ULL << 20;

Status sys_error(const std::string& what, int err) {
  return error(ErrorCode::kInternal, what + ": " + errno_text(err));
}

Status check_options(const SegmentOptions& o) {
  if (Status s = layout::validate_pool_name(o.pool); !s.ok()) return s;
  if (o.data_bytes == 0 || o.data_bytes > (1ULL << 50)) {
    return error(ErrorCode::kBadRequest, "segment data_bytes must be in (0, 1 PiB]");
  }
  if (o.catalog_capacity == 0 || o.catalog_capacity > kMaxCatalogCapacity) {
    return error(ErrorCode::kBadRequest, "catalog_capacity must be in [1, 1048576]");
  }
  return {};
}

bool is_shm(const SegmentOptions& o) { return o.segment_dir.empty(); }

// What the broker maps read-write and serves must be its own: a regular
// file of this user that nobody else may write (a squatter's 0666 file in
// the world-writable /dev/shm would let its owner rewrite served bytes).
Status check_segment_fd(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return sys_error("fstat " + path, errno);
  return layout::check_owned(st, S_IFREG, ::geteuid(), "segment", path,
                             "it is not this broker's to use: remove it if it is stale, or choose "
                             "another --name");
}

// Boost opens by path; `checked` was opened (O_NOFOLLOW) and checked first.
// The same inode behind both means Boost opened the file that was checked,
// not a symlink or a file swapped in between.
Status check_same_file(int checked, int opened, const std::string& path) {
  struct stat a {
  }, b{};
  if (::fstat(checked, &a) != 0 || ::fstat(opened, &b) != 0)
    return sys_error("fstat " + path, errno);
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    return error(ErrorCode::kForbidden,
                 "refusing segment " + path + ": it was replaced while the broker opened it");
  }
  return {};
}

// The segment path, opened without following a symlink, and checked.
Result<int> open_checked(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    struct stat st {};
    if (err == ELOOP && ::lstat(path.c_str(), &st) == 0) {
      return layout::check_owned(st, S_IFREG, ::geteuid(), "segment", path,
                                 "the broker never follows a symbolic link here");
    }
    return sys_error("opening segment " + path, err);
  }
  if (Status s = check_segment_fd(fd, path); !s.ok()) {
    ::close(fd);
    return s;
  }
  return fd;
}

// Allocates the pages of the header and catalog, [0, catalog end). The broker
// writes (and the self-check reads) them through a mapping; on a filesystem
// that fills up later, touching a page not yet allocated would be a SIGBUS.
Status reserve_front(int fd, const std::string& path, std::uint64_t catalog_offset,
                     std::uint64_t catalog_capacity) {
  const std::uint64_t len = catalog_offset + catalog_capacity * sizeof(layout::CatalogEntry);
  int rc;
  do {
    rc = ::fallocate(fd, 0, 0, static_cast<off_t>(len));
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return {};
  return sys_error("reserving " + units::format_bytes(len) + " for the catalog of " + path, errno);
}

}  // namespace

Result<std::unique_ptr<Segment>> Segment::open(const SegmentOptions& options, std::int64_t pid) {
  if (Status s = check_options(options); !s.ok()) return s;
  const std::string path = layout::segment_path(options.segment_dir, options.pool);
  if (options.recreate) {
    if (Status s = remove(options); !s.ok()) return s;
  }
  try {
    return create(options, path, pid);
  } catch (const std::exception& e) {  // bad_alloc and the like; Boost's are caught inside
    return error(ErrorCode::kInternal, "segment " + path + ": " + e.what());
  }
}

// Creates the file exclusively and initializes it; adopts it if it exists.
Result<std::unique_ptr<Segment>> Segment::create(const SegmentOptions& options,
                                                 const std::string& path, std::int64_t pid) {
  std::unique_ptr<Segment> seg(new Segment());
  seg->backing_ = std::make_unique<Backing>();
  seg->path_ = path;
  if (is_shm(options)) {
    try {
      seg->backing_->shm.emplace(bip::create_only, options.pool.c_str(), bip::read_write,
                                 bip::permissions(static_cast<int>(options.mode)));
    } catch (const bip::interprocess_exception& e) {
      if (e.get_error_code() == bip::already_exists_error) return adopt(options, path, pid);
      return error(ErrorCode::kInternal, "creating segment " + path + ": " + e.what());
    }
    seg->fd_ = seg->backing_->shm->get_mapping_handle().handle;
  } else {
    // O_EXCL: never an existing file, nor a symlink's target.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, options.mode);
    if (fd < 0 && errno == EEXIST) return adopt(options, path, pid);
    if (fd < 0) return sys_error("creating segment " + path, errno);
    Status opened = ::fchmod(fd, options.mode) == 0  // undo the umask
                        ? Status{}
                        : sys_error("chmod " + path, errno);
    try {
      if (opened.ok()) seg->backing_->file.emplace(path.c_str(), bip::read_write);
    } catch (const bip::interprocess_exception& e) {
      opened = error(ErrorCode::kInternal, "opening segment " + path + ": " + e.what());
    }
    if (opened.ok()) {
      seg->fd_ = seg->backing_->file->get_mapping_handle().handle;
      opened = check_same_file(fd, seg->fd_, path);
    }
    ::close(fd);
    if (!opened.ok()) return opened;
  }
  ::fcntl(seg->fd_, F_SETFD, FD_CLOEXEC);
  Status s = check_segment_fd(seg->fd_, path);
  if (s.ok()) s = seg->probe_filesystem();
  if (s.ok()) s = seg->initialize(options, pid);
  if (!s.ok()) {
    seg.reset();
    (void)remove(options);  // leave no half-made segment behind
    return s;
  }
  return seg;
}

Result<std::unique_ptr<Segment>> Segment::adopt(const SegmentOptions& options,
                                                const std::string& path, std::int64_t pid) {
  std::unique_ptr<Segment> seg(new Segment());
  seg->backing_ = std::make_unique<Backing>();
  seg->path_ = path;
  seg->adopted_ = true;
  // Someone else's file, or a symlink, is refused before anything is
  // written or truncated; Boost then opens the same path and must reach
  // the same inode.
  auto checked = open_checked(path, O_RDWR);
  if (!checked.ok()) return checked.status();
  Status opened;
  try {
    if (is_shm(options)) {
      seg->backing_->shm.emplace(bip::open_only, options.pool.c_str(), bip::read_write);
      seg->fd_ = seg->backing_->shm->get_mapping_handle().handle;
    } else {
      seg->backing_->file.emplace(path.c_str(), bip::read_write);
      seg->fd_ = seg->backing_->file->get_mapping_handle().handle;
    }
    opened = check_same_file(*checked, seg->fd_, path);
  } catch (const bip::interprocess_exception& e) {
    opened = error(ErrorCode::kInternal, "opening existing segment " + path + ": " + e.what());
  }
  ::close(*checked);
  if (!opened.ok()) return opened;
  ::fcntl(seg->fd_, F_SETFD, FD_CLOEXEC);
  if (Status s = seg->probe_filesystem(); !s.ok()) return s;
  struct stat st {};
  if (::fstat(seg->fd_, &st) != 0) return sys_error("fstat " + path, errno);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  layout::SegmentHeader h{};
  if (size >= layout::kHeaderBytes &&
      ::pread(seg->fd_, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
    return sys_error("reading segment header of " + path, errno);
  }
  static constexpr char kNoMagic[sizeof h.magic] = {};
  if (size == 0 ||
      (size >= layout::kHeaderBytes && std::memcmp(h.magic, kNoMagic, sizeof h.magic) == 0)) {
    // The magic is written last: a creation died before it, nothing was
    // ever published, and starting afresh loses nothing.
    seg->adopted_ = false;
    if (Status s = seg->initialize(options, pid); !s.ok()) return s;
    return seg;
  }
  Status valid = size < layout::kHeaderBytes
                     ? error(ErrorCode::kInternal, "incompatible segment: smaller than its header")
                     : layout::validate_header(h, options.pool, size);
  if (!valid.ok()) {
    return error(valid.code(), "segment " + path + ": " + valid.message() +
                                   "; refusing to adopt it (start with --recreate to discard it)");
  }
  if (Status s = reserve_front(seg->fd_, path, h.catalog_offset, h.catalog_capacity); !s.ok()) {
    return s;
  }
  if (Status s = seg->map_front(h.data_offset); !s.ok()) return s;
  seg->header_->broker_pid = pid;
  return seg;
}

// Sizes a fresh (or zero-length) file and writes its header, magic last.
Status Segment::initialize(const SegmentOptions& options, std::int64_t pid) {
  const std::uint64_t alignment = std::max(layout::kDefaultAlignment, page_size_);
  const layout::Geometry g =
      layout::compute_geometry(options.catalog_capacity, options.data_bytes, alignment);
  if (::ftruncate(fd_, static_cast<off_t>(g.segment_size)) != 0) {
    return sys_error("sizing segment " + path_, errno);
  }
  if (Status s = reserve_front(fd_, path_, g.catalog_offset, g.catalog_capacity); !s.ok()) return s;
  if (Status s = map_front(g.data_offset); !s.ok()) return s;
  layout::SegmentHeader fresh{};
  layout::init_header(&fresh, options.pool, g, pid);
  char magic[sizeof fresh.magic];
  std::memcpy(magic, fresh.magic, sizeof magic);
  std::memset(fresh.magic, 0, sizeof fresh.magic);
  std::memcpy(header_, &fresh, sizeof fresh);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // see publish_loading
  std::memcpy(header_->magic, magic, sizeof magic);
  return {};
}

Status Segment::map_front(std::uint64_t bytes) {
  try {
    if (backing_->shm) {
      backing_->front = bip::mapped_region(*backing_->shm, bip::read_write, 0, bytes);
    } else {
      backing_->front = bip::mapped_region(*backing_->file, bip::read_write, 0, bytes);
    }
  } catch (const bip::interprocess_exception& e) {
    return error(ErrorCode::kInternal, "mapping segment " + path_ + ": " + e.what());
  }
  header_ = static_cast<layout::SegmentHeader*>(backing_->front.get_address());
  return {};
}

Status Segment::probe_filesystem() {
  auto probe = broker::probe_filesystem(fd_);
  if (!probe.ok()) return probe.status();
  page_size_ = probe->page_size;
  hugetlbfs_ = probe->hugetlbfs;
  return {};
}

Segment::~Segment() = default;

Status Segment::remove(const SegmentOptions& options) {
  if (Status s = layout::validate_pool_name(options.pool); !s.ok()) return s;
  const std::string path = layout::segment_path(options.segment_dir, options.pool);
  // Only the broker's own file (unlink removes a symlink itself, never its
  // target): another user's is not ours to discard, even with --recreate.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && st.st_uid != ::geteuid()) {
    return layout::check_owned(st, S_IFREG, ::geteuid(), "segment", path,
                               "it is not this broker's to remove");
  }
  if (is_shm(options)) {
    if (bip::shared_memory_object::remove(options.pool.c_str())) return {};
    if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return {};
    return error(ErrorCode::kInternal, "could not remove segment " + path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return sys_error("removing segment " + path, errno);
  }
  return {};
}

Status Segment::reserve(std::uint64_t offset, std::uint64_t len) {
  if (len == 0 || offset < data_offset() || offset > size() || len > size() - offset) {
    return error(ErrorCode::kInternal, "reserve outside the data region");
  }
  int rc;
  do {
    rc = ::fallocate(fd_, 0, static_cast<off_t>(offset), static_cast<off_t>(len));
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return {};
  const int err = errno;
  if (err == ENOSPC || err == ENOMEM) {
    std::string msg = "filesystem full: cannot reserve " + units::format_bytes(len) + " in " +
                      path_ + " (" + errno_text(err);
    if (auto free = filesystem_free_bytes(path_); free.ok()) {
      msg += ", " + units::format_bytes(*free) + " free";
    }
    return error(ErrorCode::kPoolFull, msg + ")");
  }
  return sys_error("fallocate " + path_, err);
}

void Segment::release(std::uint64_t offset, std::uint64_t len) {
  if (len == 0 || offset < data_offset() || offset > size() || len > size() - offset) return;
  int rc;
  do {
    rc = ::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                     static_cast<off_t>(len));
  } while (rc != 0 && errno == EINTR);
}

}  // namespace modelpool::broker
