// File: tests/fault/fault_support.hpp
//
// What the fault tests and the chaos driver need beyond the broker fixture:
// a direct look at a pool's segment file (header, catalog rows, which bytes
// of the data region hold memory), the bytes' XXH3, a read-only worker-style
// mapping of a model, a protocol connection that never raises SIGPIPE and
// never blocks past a deadline, and /proc readings of a process. Crafting
// crash states (SegmentView::catalog_mut) is only safe while no broker runs.
#ifndef MODELPOOL_TESTS_FAULT_FAULT_SUPPORT_HPP_
#define MODELPOOL_TESTS_FAULT_FAULT_SUPPORT_HPP_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shm/layout/segment_layout.hpp"
#include "shm/protocol/frame.hpp"

namespace modelpool::fault {

using nlohmann::json;
using Ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;  // [begin, end)

struct CatalogRow {
  std::uint32_t slot = 0;
  layout::EntryState state = layout::EntryState::kFree;
  std::string name;
  std::uint64_t generation = 0, offset = 0, size = 0, extent_size = 0, checksum = 0;
  bool pinned = false;
  // The memory the entry holds on a segment of 4 KiB pages (/dev/shm): its
  // size in whole pages. The rest of its extent is a hole.
  std::uint64_t pages() const { return (size + 4095) / 4096 * 4096; }
};

// The segment at `path`, its front [0, data_offset) mapped (read-write when
// `writable`). Throws std::runtime_error when it cannot be opened.
class SegmentView {
 public:
  explicit SegmentView(const std::string& path, bool writable = false);
  ~SegmentView();
  SegmentView(const SegmentView&) = delete;
  SegmentView& operator=(const SegmentView&) = delete;

  const layout::SegmentHeader& header() const { return *header_; }
  std::vector<CatalogRow> rows() const;  // every slot that is not FREE
  layout::CatalogEntry& catalog_mut(std::uint32_t slot);
  // Data-region ranges that were written (SEEK_DATA/SEEK_HOLE on tmpfs;
  // pages reserved with fallocate and never written do not show).
  Ranges written_ranges() const;
  // Bytes of memory the data region holds, reserved or written (cachestat).
  std::uint64_t held_bytes() const;
  std::uint64_t held_bytes(std::uint64_t offset, std::uint64_t len) const;  // of one range
  // XXH3-64 of [offset, offset + size) read with pread (no mapping).
  std::uint64_t hash(std::uint64_t offset, std::uint64_t size) const;
  // Bytes of `resident` not covered by `extents` (both sorted, disjoint).
  static std::uint64_t uncovered(const Ranges& resident, Ranges extents);

 private:
  int fd_ = -1;
  void* front_ = nullptr;
  std::uint64_t front_bytes_ = 0;
  layout::SegmentHeader* header_ = nullptr;
};

// A worker's read-only view of [offset, offset + size) of a segment file.
class Mapping {
 public:
  Mapping(const std::string& segment_path, std::uint64_t offset, std::uint64_t size);
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  const unsigned char* data() const { return data_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t hash() const;

 private:
  void* base_ = nullptr;
  std::size_t length_ = 0;
  const unsigned char* data_ = nullptr;
  std::uint64_t size_ = 0;
};

std::uint64_t xxh3(const void* data, std::size_t size);
std::uint64_t xxh3_file(const std::string& path);
std::string hex16(std::uint64_t v);  // as the protocol spells checksums

// A protocol connection: writes with MSG_NOSIGNAL, reads with a deadline.
// Every failure (refused, EOF, reset, timeout) is "closed": recv() returns
// nullopt and send() false, and the connection stays closed.
class Conn {
 public:
  explicit Conn(const std::string& socket_path);  // closed() when refused
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  bool closed() const { return fd_ < 0; }
  int fd() const { return fd_; }
  bool send(const json& request);
  bool send_bytes(const std::string& bytes);
  std::optional<json> recv(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::optional<json> request(const json& request,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // True when the peer has hung up (poll POLLRDHUP/POLLHUP, no waiting).
  bool peer_gone() const;
  void close();

 private:
  int fd_ = -1;
  proto::FrameDecoder decoder_;
};

// True when `reply` arrived and says "ok": true.
bool replied_ok(const std::optional<json>& reply);

std::size_t open_fds(pid_t pid);        // entries of /proc/PID/fd
std::uint64_t vm_rss_bytes(pid_t pid);  // VmRSS of /proc/PID/status
// utime + stime of `pid`, in clock ticks (/proc/PID/stat fields 14, 15).
std::uint64_t cpu_ticks(pid_t pid);
// The CPU `pid` uses over one second of wall time, in clock ticks, printed
// with `what` for the test log. A measurement window, not a synchronisation.
std::uint64_t cpu_ticks_over_one_second(pid_t pid, const char* what);
// Whether `ticks` over one second are a busy loop: more than a fifth of a CPU.
bool spins(std::uint64_t ticks_per_second);
// Lines of the file at `path` that contain `needle`.
int count_lines_with(const std::string& path, std::string_view needle);

}  // namespace modelpool::fault

#endif  // MODELPOOL_TESTS_FAULT_FAULT_SUPPORT_HPP_
