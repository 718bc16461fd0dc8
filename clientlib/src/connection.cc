// File: clientlib/src/connection.cc
#include "clientlib/src/connection.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace modelpool::detail {
namespace {

// Sends `hello` on a fresh channel and checks the protocol version.
Result<proto::HelloReply> say_hello(Channel& channel) {
  auto body = channel.call("hello", proto::json::object());
  if (!body.ok()) return body.status();
  auto hello = proto::decode_hello_reply(*body);
  if (!hello.ok()) return hello.status();
  if (hello->proto != proto::kProtocolVersion) {
    return error(ErrorCode::kProtocol, "modelpool broker at " + channel.socket_path() +
                                           " speaks protocol " + std::to_string(hello->proto) +
                                           "; this client speaks " +
                                           std::to_string(proto::kProtocolVersion));
  }
  return hello;
}

Result<std::shared_ptr<SegmentFile>> open_segment(const std::string& path) {
  auto seg = std::make_shared<SegmentFile>();
  seg->fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!seg->fd.valid() || ::fstat(seg->fd.get(), &st) != 0) {
    const int err = errno;
    return error(ErrorCode::kUnavailable,
                 "cannot open the pool's segment " + path + ": " + errno_text(err));
  }
  seg->device = static_cast<std::uint64_t>(st.st_dev);
  seg->inode = static_cast<std::uint64_t>(st.st_ino);
  seg->file_size = static_cast<std::uint64_t>(st.st_size);
  return seg;
}

bool valid_format(std::string_view f) { return f == "raw" || f == "safetensors" || f == "gguf"; }

}  // namespace

Connection::Connection(std::string socket_path, Channel channel, const proto::HelloReply& hello,
                       std::shared_ptr<SegmentFile> segment)
    : socket_path_(std::move(socket_path)),
      owner_pid_(::getpid()),
      pool_(hello.pool),
      segment_path_(hello.segment_path),
      page_size_(hello.page_size),
      channel_(std::move(channel)),
      segment_(std::move(segment)),
      segment_size_(hello.segment_size) {}

Result<std::shared_ptr<Connection>> Connection::open(const std::string& socket_path) {
  auto channel = Channel::open(socket_path, std::nullopt);
  if (!channel.ok()) return channel.status();
  auto hello = say_hello(*channel);
  if (!hello.ok()) return hello.status();
  auto segment = open_segment(hello->segment_path);
  if (!segment.ok()) return segment.status();
  return std::shared_ptr<Connection>(
      new Connection(socket_path, std::move(channel).value(), *hello, *segment));
}

Result<Acquired> Connection::acquire(std::string_view model, std::optional<std::uint64_t> wait_ms,
                                     bool populate) {
  if (::getpid() != owner_pid_) {
    return error(ErrorCode::kUnavailable, "this Client was connected by process " +
                                              std::to_string(owner_pid_) +
                                              "; after fork(), connect a new Client");
  }
  std::unique_lock lock(mu_);
  auto reply = request_acquire_locked(proto::AcquireRequest{std::string(model), wait_ms});
  if (!reply.ok()) return reply.status();
  if (Status s = check_reply_locked(*reply); !s.ok()) {
    release_handle_locked(reply->handle);
    return s;
  }
  auto lease = std::make_shared<Lease>(*reply);
  lease->epoch = epoch_;
  leases_.insert(lease);
  std::shared_ptr<SegmentFile> segment = segment_;
  const std::uint64_t page_size = page_size_.load(std::memory_order_relaxed);
  lock.unlock();

  // Mapping (with MAP_POPULATE it faults in every page) runs unlocked.
  auto mapping = Mapping::map(segment->fd.get(), reply->offset, reply->size, page_size, populate);
  if (!mapping.ok()) {
    (void)release(lease);
    return mapping.status();
  }
  return Acquired{std::move(reply).value(), std::move(lease), std::move(mapping).value()};
}

Result<proto::AcquireReply> Connection::request_acquire_locked(
    const proto::AcquireRequest& request) {
  bool reconnected = false;
  if (!channel_ || channel_->broken()) {
    if (Status s = reconnect_locked(); !s.ok()) return s;
    reconnected = true;
  }
  for (;;) {
    auto body = channel_->call("acquire", proto::to_json(request));
    if (body.ok()) return proto::decode_acquire_reply(*body);
    if (!channel_->broken() || reconnected) return body.status();
    // The connection ended under the request (a broker restart?), and the
    // broker dropped its handles with it: reconnect once and retry.
    if (Status s = reconnect_locked(); !s.ok()) return s;
    reconnected = true;
  }
}

// Guards against mapping bytes the segment file does not have (SIGBUS on
// access) and against formats this client cannot name.
Status Connection::check_reply_locked(const proto::AcquireReply& reply) {
  if (!valid_format(reply.format)) {
    return error(ErrorCode::kProtocol, "acquire reply: unknown format \"" + reply.format + "\"");
  }
  if (reply.offset % static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) != 0) {
    return error(ErrorCode::kProtocol,
                 "acquire reply: offset " + std::to_string(reply.offset) + " is not page-aligned");
  }
  const std::uint64_t end = reply.offset + reply.size;
  if (end < reply.offset || end > segment_size_) {
    return error(ErrorCode::kProtocol, "acquire reply: extent [" + std::to_string(reply.offset) +
                                           ", +" + std::to_string(reply.size) +
                                           ") lies outside the segment");
  }
  if (end > segment_->file_size.load()) {
    struct stat st {};
    if (::fstat(segment_->fd.get(), &st) == 0) {
      segment_->file_size = static_cast<std::uint64_t>(st.st_size);
    }
    if (end > segment_->file_size.load()) {
      return error(ErrorCode::kProtocol, "acquire reply: extent ends past the segment file");
    }
  }
  return {};
}

Status Connection::release(const std::shared_ptr<Lease>& lease) {
  if (::getpid() != owner_pid_) return {};  // the parent's handle, on the parent's socket
  std::lock_guard lock(mu_);
  leases_.erase(lease);
  // A handle whose connection ended was dropped by the broker already.
  if (lease->orphaned || lease->epoch != epoch_ || !channel_ || channel_->broken()) return {};
  auto r = channel_->call("release", proto::to_json(proto::ReleaseRequest{lease->handle.load()}));
  if (r.ok() || channel_->broken()) return {};
  return r.status();
}

void Connection::release_handle_locked(std::uint64_t handle) {
  if (channel_ && !channel_->broken()) {
    (void)channel_->call("release", proto::to_json(proto::ReleaseRequest{handle}));
  }
}

Status Connection::reconnect_locked() {
  channel_.reset();
  auto channel = Channel::open(socket_path_, std::nullopt);
  if (!channel.ok()) return channel.status();
  auto hello = say_hello(*channel);
  if (!hello.ok()) return hello.status();
  if (hello->pool != pool_ || hello->segment_path != segment_path_) {
    return error(ErrorCode::kUnavailable, "the broker at " + socket_path_ + " now serves pool '" +
                                              hello->pool + "' on segment " + hello->segment_path +
                                              " (was '" + pool_ + "' on " + segment_path_ +
                                              "); connect a new Client");
  }
  auto segment = open_segment(hello->segment_path);
  if (!segment.ok()) return segment.status();
  const bool same_segment =
      (*segment)->device == segment_->device && (*segment)->inode == segment_->inode;
  channel_ = std::move(channel).value();
  segment_ = *segment;
  segment_size_ = hello->segment_size;
  page_size_.store(hello->page_size, std::memory_order_relaxed);
  ++epoch_;
  for (const auto& lease : leases_) {
    if (lease->orphaned || lease->epoch == epoch_) continue;
    if (!same_segment) {
      lease->orphaned = true;
      continue;
    }
    if (Status s = reprotect_locked(*lease); !s.ok()) return s;
  }
  return {};
}

// Re-acquires `lease` on the new channel. Only the same generation at the
// same place protects the bytes the Model maps; anything else orphans it.
// Fails only when the channel breaks.
Status Connection::reprotect_locked(Lease& lease) {
  auto body = channel_->call("acquire", proto::to_json(proto::AcquireRequest{lease.model, {}}));
  if (!body.ok()) {
    if (channel_->broken()) return body.status();
    lease.orphaned = true;
    return {};
  }
  auto r = proto::decode_acquire_reply(*body);
  if (!r.ok()) {
    lease.orphaned = true;
    return {};
  }
  if (r->generation == lease.generation && r->offset == lease.offset && r->size == lease.size &&
      r->checksum == lease.checksum) {
    lease.handle = r->handle;
    lease.epoch = epoch_;
    return {};
  }
  lease.orphaned = true;
  release_handle_locked(r->handle);
  return channel_->broken() ? error(ErrorCode::kUnavailable, "connection lost") : Status{};
}

}  // namespace modelpool::detail
