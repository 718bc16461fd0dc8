// File: clientlib/src/connection.cc
#include "clientlib/src/connection.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <utility>
#include <vector>

#include "clientlib/src/peer_check.hpp"
#include "shm/layout/segment_layout.hpp"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

namespace modelpool::detail {
namespace {

// Sends `hello` on a fresh channel and checks the protocol version. With
// `release_ring`, asks for a release ring and attaches it to the channel.
Result<proto::HelloReply> say_hello(Channel& channel, bool release_ring) {
  proto::json fields = proto::json::object();
  if (release_ring) fields["release_ring"] = true;
  auto body = channel.call("hello", std::move(fields));
  if (!body.ok()) return body.status();
  auto hello = proto::decode_hello_reply(*body);
  if (!hello.ok()) return hello.status();
  if (hello->proto != proto::kProtocolVersion) {
    return error(ErrorCode::kProtocol, "modelpool broker at " + channel.socket_path() +
                                           " speaks protocol " + std::to_string(hello->proto) +
                                           "; this client speaks " +
                                           std::to_string(proto::kProtocolVersion));
  }
  UniqueFd fd = channel.take_passed_fd();
  if (release_ring && body->contains("release_ring") && fd.valid()) {
    // A ring that does not map is not used: releases go as frames.
    if (auto ring = proto::ReleaseRing::attach(fd.get()); ring.ok()) {
      channel.set_release_ring(std::move(ring).value());
    }
  }
  return hello;
}

// Opens the segment `hello` names, owned by the broker's user (peer_check.hpp).
Result<std::shared_ptr<SegmentFile>> open_segment(const proto::HelloReply& hello, uid_t broker) {
  struct stat st {};
  auto fd = open_broker_segment(hello.segment_path, broker, &st);
  if (!fd.ok()) return fd.status();
  return std::make_shared<SegmentFile>(std::move(fd).value(), static_cast<std::uint64_t>(st.st_dev),
                                       static_cast<std::uint64_t>(st.st_ino),
                                       static_cast<std::uint64_t>(st.st_size), hello.segment_size,
                                       hello.page_size);
}

// Counts the fork()s this process came out of as a child, so a Connection can
// tell that it was inherited without a getpid() system call per request.
std::atomic<std::uint64_t> g_forks{0};

std::uint64_t fork_generation() {
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, [] { g_forks.fetch_add(1, std::memory_order_relaxed); });
    return true;
  }();
  (void)registered;
  return g_forks.load(std::memory_order_relaxed);
}

// Pages of this size or larger are populated on an extent's first view.
constexpr std::uint64_t kHugePage = 2ULL << 20;

bool valid_format(std::string_view f) { return f == "raw" || f == "safetensors" || f == "gguf"; }

// Faults in the pages of `bytes` ahead of use: one madvise where the kernel
// has MADV_POPULATE_READ, else (with `or_read`) a read of every page.
void populate(std::span<const std::byte> bytes, bool or_read) {
  if (bytes.empty()) return;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<std::uintptr_t>(bytes.data()) / page * page;
  const auto end = reinterpret_cast<std::uintptr_t>(bytes.data()) + bytes.size();
  if (::madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_READ) == 0) return;
  if (errno != EINVAL || !or_read) return;  // best effort, as MAP_POPULATE is
  unsigned char sink = 0;
  for (std::uintptr_t p = start; p < end; p += page) {
    sink ^= *reinterpret_cast<const volatile unsigned char*>(p);
  }
  (void)sink;
}

}  // namespace

void SegmentFile::refresh_file_size() {
  struct stat st {};
  if (::fstat(fd_.get(), &st) == 0) {
    file_size_.store(static_cast<std::uint64_t>(st.st_size), std::memory_order_relaxed);
  }
}

Result<std::span<const std::byte>> SegmentFile::view(std::uint64_t offset, std::uint64_t size,
                                                     bool populate_pages) {
  std::span<const std::byte> all;
  bool first_on_huge_pages = false;
  {
    std::lock_guard lock(map_mu_);
    if (mapping_.bytes().empty()) {
      auto m = Mapping::map(fd_.get(), 0, segment_size_, page_size_);
      if (!m.ok()) return m.status();
      mapping_ = std::move(m).value();
    }
    all = mapping_.bytes();
    if (page_size_ >= kHugePage && offset <= all.size() && size <= all.size() - offset) {
      first_on_huge_pages = populated_.emplace(offset, size).second;
    }
  }
  if (offset > all.size() || size > all.size() - offset) {
    return error(ErrorCode::kProtocol, "acquire reply: extent [" + std::to_string(offset) + ", +" +
                                           std::to_string(size) + ") lies outside the segment");
  }
  std::span<const std::byte> bytes = all.subspan(offset, size);
  // Unasked, only the madvise: reading every page ahead is not cheaper
  // than the faults it would save.
  if (populate_pages || first_on_huge_pages) populate(bytes, populate_pages);
  return bytes;
}

namespace {

Status set_range_lock(int fd, std::uint64_t offset, std::uint64_t size, short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = static_cast<off_t>(size);
  fl.l_pid = 0;  // required for OFD locks
  int rc;
  do {
    rc = ::fcntl(fd, F_OFD_SETLK, &fl);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return {};
  const int err = errno;
  return error(ErrorCode::kInternal, "cannot lock the extent [" + std::to_string(offset) + ", +" +
                                         std::to_string(size) +
                                         ") of the pool's segment: " + errno_text(err));
}

}  // namespace

SegmentFile::Extent SegmentFile::lock_range(const Extent& e) const {
  // Extents start on 2 MiB boundaries (the page size when larger), and the
  // rest of an extent's last block is its own: no other extent starts there.
  const std::uint64_t block = std::max<std::uint64_t>(layout::kDefaultAlignment, page_size_);
  const std::uint64_t end = e.first + e.second;  // checked against the segment's size
  return {e.first, end > UINT64_MAX - block ? end : layout::align_up(end, block)};
}

Status SegmentFile::set_locks(std::vector<Extent> ranges, short type) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<Extent> done;
  for (std::size_t i = 0; i < ranges.size();) {
    Extent run = ranges[i];
    for (++i; i < ranges.size() && ranges[i].first <= run.second; ++i) {
      run.second = std::max(run.second, ranges[i].second);
    }
    if (Status s = set_range_lock(fd_.get(), run.first, run.second - run.first, type); !s.ok()) {
      for (const Extent& d : done)
        (void)set_range_lock(fd_.get(), d.first, d.second - d.first, F_UNLCK);
      return s;
    }
    done.push_back(run);
  }
  return {};
}

Status SegmentFile::lock_extents(const std::vector<Extent>& extents) {
  std::lock_guard lock(lock_mu_);
  std::vector<Extent> fresh;  // the extents this call holds first
  for (const Extent& e : extents) {
    if (e.second == 0) continue;  // a zero length would lock to the end of the file
    if (locks_[e.first]++ == 0) fresh.push_back(lock_range(e));
  }
  Status s = set_locks(std::move(fresh), F_RDLCK);
  if (!s.ok()) {
    for (const Extent& e : extents) {
      if (e.second == 0) continue;
      if (auto it = locks_.find(e.first); it != locks_.end() && --it->second == 0) locks_.erase(it);
    }
  }
  return s;
}

void SegmentFile::unlock_extents(const std::vector<Extent>& extents) {
  std::lock_guard lock(lock_mu_);
  std::vector<Extent> idle;  // the extents no Model holds any more
  for (const Extent& e : extents) {
    if (e.second == 0) continue;
    auto it = locks_.find(e.first);
    if (it == locks_.end() || --it->second > 0) continue;
    locks_.erase(it);
    idle.push_back(lock_range(e));
  }
  (void)set_locks(std::move(idle), F_UNLCK);  // unlocking cannot fail here
}

Connection::Connection(std::string socket_path, std::unique_ptr<Channel> channel,
                       const proto::HelloReply& hello, std::shared_ptr<SegmentFile> segment,
                       std::chrono::milliseconds reconnect_timeout, bool release_ring)
    : socket_path_(std::move(socket_path)),
      owner_pid_(::getpid()),
      owner_forks_(fork_generation()),
      pool_(hello.pool),
      segment_path_(hello.segment_path),
      reconnect_timeout_(reconnect_timeout),
      release_ring_(release_ring),
      page_size_(hello.page_size),
      channel_(std::move(channel)),
      segment_(std::move(segment)) {}

Result<std::shared_ptr<Connection>> Connection::open(const std::string& socket_path,
                                                     std::chrono::milliseconds reconnect_timeout,
                                                     bool release_ring) {
  auto channel = Channel::open(socket_path, std::nullopt);
  if (!channel.ok()) return channel.status();
  auto broker = check_broker_peer((*channel)->native_fd(), socket_path);
  if (!broker.ok()) return broker.status();
  auto hello = say_hello(**channel, release_ring);
  if (!hello.ok()) return hello.status();
  auto segment = open_segment(*hello, *broker);
  if (!segment.ok()) return segment.status();
  return std::shared_ptr<Connection>(new Connection(socket_path, std::move(channel).value(), *hello,
                                                    *segment, reconnect_timeout, release_ring));
}

std::shared_ptr<Channel> Connection::channel() {
  std::lock_guard lock(mu_);
  return channel_;
}

Result<Acquired> Connection::acquire(std::string_view model, std::optional<std::uint64_t> wait_ms,
                                     bool populate) {
  if (fork_generation() != owner_forks_) {
    return error(ErrorCode::kUnavailable, "this Client was connected by process " +
                                              std::to_string(owner_pid_) +
                                              "; after fork(), connect a new Client");
  }
  std::unique_lock call(call_mu_);
  auto reply = request_acquire_calling(proto::AcquireRequest{std::string(model), wait_ms});
  if (!reply.ok()) return reply.status();
  auto lease = std::make_shared<Lease>(*reply);
  std::shared_ptr<SegmentFile> segment;
  {
    std::lock_guard lock(mu_);
    lease->epoch = epoch_;
    leases_.insert(lease);
    segment = segment_;
  }
  call.unlock();

  Status checked = check_reply(*reply, *segment);
  auto bytes = checked.ok() ? segment->view(reply->offset, reply->size, populate)
                            : Result<std::span<const std::byte>>(checked);
  std::vector<std::span<const std::byte>> files;
  for (const proto::FileRef& f : reply->files) {
    if (!bytes.ok()) break;
    auto view = segment->view(f.offset, f.size, populate);
    if (!view.ok()) bytes = view.status();
    if (view.ok()) files.push_back(*view);
  }
  // The broker's reference protects the extents until the locks are in place.
  if (bytes.ok()) {
    if (Status s = segment->lock_extents(lease->extents()); !s.ok()) {
      bytes = s;
    } else {
      std::lock_guard lock(mu_);
      lease->locked_in = segment;
    }
  }
  if (!bytes.ok()) {
    (void)release(lease);
    return bytes.status();
  }
  return Acquired{std::move(reply).value(), std::move(lease), std::move(segment), *bytes,
                  std::move(files)};
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> Lease::extents() const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  if (files.empty()) out.emplace_back(offset, size);
  for (const proto::FileRef& f : files) out.emplace_back(f.offset, f.size);
  return out;
}

Result<proto::AcquireReply> Connection::request_acquire_calling(
    const proto::AcquireRequest& request) {
  std::shared_ptr<Channel> ch = channel();
  bool reconnected = false;
  if (!ch || ch->broken()) {
    if (Status s = reconnect_with_backoff_calling(); !s.ok()) return s;
    ch = channel();
    reconnected = true;
  }
  const Channel::Encoder encode = [&](std::uint64_t id) {
    return proto::encode_acquire_request(id, request);
  };
  for (;;) {
    auto reply = ch->call_acquire(encode);
    if (reply.ok()) return reply;
    // Only a lost connection is retried; a broker that breaks the protocol is not.
    if (!ch->broken() || reconnected || reply.status().code() != ErrorCode::kUnavailable) {
      return reply.status();
    }
    // The connection ended under the request (a broker restart?), and the
    // broker dropped its handles with it: reconnect and retry once.
    if (Status s = reconnect_with_backoff_calling(); !s.ok()) return s;
    ch = channel();
    reconnected = true;
  }
}

// Guards against mapping bytes the segment file does not have (SIGBUS on
// access) and against formats this client cannot name.
Status Connection::check_reply(const proto::AcquireReply& reply, SegmentFile& segment) {
  if (Status s = check_extent(reply.offset, reply.size, reply.format, segment); !s.ok()) return s;
  for (const proto::FileRef& f : reply.files) {
    if (Status s = check_extent(f.offset, f.size, f.format, segment); !s.ok()) {
      return error(s.code(), s.message() + " (file \"" + f.name + "\")");
    }
  }
  return {};
}

Status Connection::check_extent(std::uint64_t offset, std::uint64_t size, std::string_view format,
                                SegmentFile& segment) {
  if (!valid_format(format)) {
    return error(ErrorCode::kProtocol,
                 "acquire reply: unknown format \"" + std::string(format) + "\"");
  }
  if (offset % static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) != 0) {
    return error(ErrorCode::kProtocol,
                 "acquire reply: offset " + std::to_string(offset) + " is not page-aligned");
  }
  const std::uint64_t end = offset + size;
  if (end < offset || end > segment.segment_size()) {
    return error(ErrorCode::kProtocol, "acquire reply: extent [" + std::to_string(offset) + ", +" +
                                           std::to_string(size) + ") lies outside the segment");
  }
  if (end > segment.file_size()) {
    segment.refresh_file_size();
    if (end > segment.file_size()) {
      return error(ErrorCode::kProtocol, "acquire reply: extent ends past the segment file");
    }
  }
  return {};
}

Status Connection::release(const std::shared_ptr<Lease>& lease) {
  if (fork_generation() != owner_forks_) return {};  // the parent's handle, on its socket
  std::shared_ptr<Channel> ch;
  std::uint64_t handle = 0;
  std::shared_ptr<SegmentFile> locked_in;
  {
    std::lock_guard lock(mu_);
    locked_in = std::move(lease->locked_in);
  }
  // Unlocked before the release is sent: while the broker still counts the
  // reference it keeps the extent anyway, and once it has the release it
  // finds the extent unlocked and may free it at once.
  if (locked_in) {
    locked_in->unlock_extents(lease->extents());
  }
  {
    std::lock_guard lock(mu_);
    leases_.erase(lease);
    // A handle whose connection ended was dropped by the broker already.
    if (lease->orphaned || lease->epoch != epoch_ || !channel_ || channel_->broken()) return {};
    ch = channel_;
    handle = lease->handle.load();
  }
  // No reply is asked for: release() does not wait for the broker. A failed
  // send broke the channel, and the broker drops the handles of a connection
  // that ends: nothing is left to release.
  (void)ch->release(handle);
  return {};
}

Status Connection::reconnect_with_backoff_calling() {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + reconnect_timeout_;
  std::chrono::milliseconds backoff(10);
  for (;;) {
    Status s = reconnect_calling();
    if (s.ok() || s.code() != ErrorCode::kUnavailable) return s;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      if (reconnect_timeout_.count() == 0) return s;
      return error(ErrorCode::kUnavailable, s.message() + " (still, after trying for " +
                                                std::to_string(reconnect_timeout_.count()) +
                                                " ms)");
    }
    std::this_thread::sleep_for(
        std::min<Clock::duration>(backoff, deadline - now));  // backoff, not synchronization
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
}

Status Connection::reconnect_calling() {
  {
    std::lock_guard lock(mu_);
    channel_.reset();
  }
  auto opened = Channel::open(socket_path_, std::nullopt);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<Channel> ch = std::move(opened).value();
  auto broker = check_broker_peer(ch->native_fd(), socket_path_);
  if (!broker.ok()) return broker.status();
  auto hello = say_hello(*ch, release_ring_);
  if (!hello.ok()) return hello.status();
  if (hello->pool != pool_ || hello->segment_path != segment_path_) {
    return error(ErrorCode::kUnavailable, "the broker at " + socket_path_ + " now serves pool '" +
                                              hello->pool + "' on segment " + hello->segment_path +
                                              " (was '" + pool_ + "' on " + segment_path_ +
                                              "); connect a new Client");
  }
  auto segment = open_segment(*hello, *broker);
  if (!segment.ok()) return segment.status();
  std::vector<std::shared_ptr<Lease>> to_protect;
  {
    std::lock_guard lock(mu_);
    const bool same_segment = (*segment)->device() == segment_->device() &&
                              (*segment)->inode() == segment_->inode() &&
                              hello->segment_size == segment_->segment_size();
    // The same segment keeps its SegmentFile, and so its mapping.
    if (!same_segment) segment_ = *segment;
    channel_ = ch;
    page_size_.store(hello->page_size, std::memory_order_relaxed);
    ++epoch_;
    for (const auto& lease : leases_) {
      if (lease->orphaned || lease->epoch == epoch_) continue;
      if (!same_segment) {
        lease->orphaned = true;
        continue;
      }
      to_protect.push_back(lease);
    }
  }
  for (const auto& lease : to_protect) {
    if (Status s = reprotect_calling(lease, *ch); !s.ok()) return s;
  }
  return {};
}

// Re-acquires `lease` on the new channel. Only the same generation at the
// same place protects the bytes the Model maps; anything else orphans it.
// Fails only when the channel breaks.
Status Connection::reprotect_calling(const std::shared_ptr<Lease>& lease, Channel& channel) {
  auto body = channel.call("acquire", proto::to_json(proto::AcquireRequest{lease->model, {}}));
  if (!body.ok()) {
    if (channel.broken()) return body.status();
    std::lock_guard lock(mu_);
    lease->orphaned = true;
    return {};
  }
  auto r = proto::decode_acquire_reply(*body);
  if (!r.ok()) {
    std::lock_guard lock(mu_);
    lease->orphaned = true;
    return {};
  }
  const bool same = r->generation == lease->generation && r->offset == lease->offset &&
                    r->size == lease->size && r->checksum == lease->checksum &&
                    r->files == lease->files;
  bool keep = false;
  {
    std::lock_guard lock(mu_);
    // The Model may have been released while the request was in flight.
    keep = same && leases_.count(lease) != 0;
    if (keep) {
      lease->handle = r->handle;
      lease->epoch = epoch_;
    } else {
      lease->orphaned = true;
    }
  }
  if (!keep) (void)channel.release(r->handle);
  return channel.broken() ? error(ErrorCode::kUnavailable, "connection lost") : Status{};
}

}  // namespace modelpool::detail
