// File: tests/fault/fault_support.cc
#include "fault_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace modelpool::fault {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

SegmentView::SegmentView(const std::string& path, bool writable) {
  fd_ = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd_ < 0) fail("open " + path);
  layout::SegmentHeader h{};
  if (::pread(fd_, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
    fail("read header of " + path);
  }
  if (std::memcmp(h.magic, layout::kMagic, sizeof h.magic) != 0) {
    throw std::runtime_error(path + " is not a modelpool segment");
  }
  front_bytes_ = h.data_offset;
  front_ =
      ::mmap(nullptr, front_bytes_, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd_, 0);
  if (front_ == MAP_FAILED) fail("mmap " + path);
  header_ = static_cast<layout::SegmentHeader*>(front_);
}

SegmentView::~SegmentView() {
  if (front_ != nullptr && front_ != MAP_FAILED) ::munmap(front_, front_bytes_);
  if (fd_ >= 0) ::close(fd_);
}

layout::CatalogEntry& SegmentView::catalog_mut(std::uint32_t slot) {
  return layout::catalog(front_, *header_)[slot];
}

std::vector<CatalogRow> SegmentView::rows() const {
  std::vector<CatalogRow> out;
  const layout::CatalogEntry* cat = layout::catalog(front_, *header_);
  for (std::uint32_t slot = 0; slot < header_->catalog_capacity; ++slot) {
    const layout::CatalogEntry& e = cat[slot];
    const auto state = static_cast<layout::EntryState>(e.state.load(std::memory_order_acquire));
    if (state == layout::EntryState::kFree) continue;
    out.push_back(CatalogRow{slot, state, std::string(layout::entry_name(e)), e.generation,
                             e.offset, e.size, e.extent_size, e.checksum, e.pinned != 0});
  }
  return out;
}

Ranges SegmentView::written_ranges() const {
  Ranges out;
  std::uint64_t at = header_->data_offset;
  const std::uint64_t end = header_->segment_size;
  while (at < end) {
    const off_t data = ::lseek(fd_, static_cast<off_t>(at), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;
    if (data < 0) fail("SEEK_DATA");
    const off_t hole = ::lseek(fd_, data, SEEK_HOLE);
    if (hole < 0) fail("SEEK_HOLE");
    if (static_cast<std::uint64_t>(data) >= end) break;
    out.emplace_back(static_cast<std::uint64_t>(data),
                     std::min(static_cast<std::uint64_t>(hole), end));
    at = static_cast<std::uint64_t>(hole);
  }
  return out;
}

std::uint64_t SegmentView::held_bytes() const {
  return held_bytes(header_->data_offset, header_->segment_size - header_->data_offset);
}

std::uint64_t SegmentView::held_bytes(std::uint64_t offset, std::uint64_t len) const {
  struct {
    std::uint64_t off, len;
  } range{offset, len};
  struct {
    std::uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } stat{};
  if (::syscall(451, fd_, &range, &stat, 0) != 0) fail("cachestat (Linux 6.5)");  // __NR_cachestat
  return (stat.nr_cache + stat.nr_evicted) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::uint64_t SegmentView::hash(std::uint64_t offset, std::uint64_t size) const {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::vector<char> buf(1 << 20);
  while (size > 0) {
    const std::size_t want = std::min<std::uint64_t>(size, buf.size());
    const ssize_t n = ::pread(fd_, buf.data(), want, static_cast<off_t>(offset));
    if (n <= 0) {
      XXH3_freeState(st);
      fail("pread segment");
    }
    XXH3_64bits_update(st, buf.data(), static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
    size -= static_cast<std::uint64_t>(n);
  }
  const std::uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

std::uint64_t SegmentView::uncovered(const Ranges& resident, Ranges extents) {
  std::sort(extents.begin(), extents.end());
  std::uint64_t stray = 0;
  for (auto [at, end] : resident) {
    for (const auto& [b, e] : extents) {
      if (e <= at || b >= end) continue;
      if (b > at) stray += b - at;
      at = std::max(at, e);
      if (at >= end) break;
    }
    if (at < end) stray += end - at;
  }
  return stray;
}

Mapping::Mapping(const std::string& segment_path, std::uint64_t offset, std::uint64_t size)
    : size_(size) {
  const int fd = ::open(segment_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open " + segment_path);
  const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t start = offset / page * page;
  length_ = static_cast<std::size_t>(std::max<std::uint64_t>(offset + size - start, 1));
  base_ = ::mmap(nullptr, length_, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  ::close(fd);
  if (base_ == MAP_FAILED) fail("mmap " + segment_path);
  data_ = static_cast<const unsigned char*>(base_) + (offset - start);
}

Mapping::~Mapping() {
  if (base_ != MAP_FAILED) ::munmap(base_, length_);
}

std::uint64_t Mapping::hash() const { return xxh3(data_, size_); }

std::uint64_t xxh3(const void* data, std::size_t size) { return XXH3_64bits(data, size); }

std::uint64_t xxh3_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return xxh3(bytes.data(), bytes.size());
}

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

Conn::Conn(const std::string& socket_path) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) close();
}

Conn::~Conn() { close(); }

void Conn::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool Conn::send_bytes(const std::string& bytes) {
  std::size_t done = 0;
  while (fd_ >= 0 && done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close();
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return fd_ >= 0;
}

bool Conn::send(const json& request) { return send_bytes(proto::encode_frame(request.dump())); }

std::optional<json> Conn::recv(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (fd_ >= 0) {
    auto f = decoder_.next();
    if (!f.ok()) break;
    if (f->has_value()) return json::parse(**f, nullptr, false);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // timeout
    char buf[65536];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder_.feed(buf, static_cast<std::size_t>(n));
  }
  close();
  return std::nullopt;
}

std::optional<json> Conn::request(const json& request, std::chrono::milliseconds timeout) {
  if (!send(request)) return std::nullopt;
  return recv(timeout);
}

bool Conn::peer_gone() const {
  if (fd_ < 0) return true;
  pollfd p{fd_, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool replied_ok(const std::optional<json>& reply) {
  return reply && reply->is_object() && reply->value("ok", false);
}

std::size_t open_fds(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) fail("opendir /proc/PID/fd");
  std::size_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

std::uint64_t vm_rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::uint64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
    std::getline(in, key);
  }
  return 0;
}

std::uint64_t cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(stat.substr(paren + 2));  // from field 3, the state
  std::string field;
  std::uint64_t ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i >= 14) ticks += std::stoull(field);
  }
  return ticks;
}

std::uint64_t cpu_ticks_over_one_second(pid_t pid, const char* what) {
  const std::uint64_t before = cpu_ticks(pid);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const std::uint64_t used = cpu_ticks(pid) - before;
  std::printf("broker CPU over 1 s %s: %llu ticks of %ld\n", what,
              static_cast<unsigned long long>(used), ::sysconf(_SC_CLK_TCK));
  return used;
}

bool spins(std::uint64_t ticks_per_second) {
  return ticks_per_second >= static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK)) / 5;
}

int count_lines_with(const std::string& path, std::string_view needle) {
  std::ifstream in(path);
  int lines = 0;
  for (std::string line; std::getline(in, line);) lines += line.find(needle) != std::string::npos;
  return lines;
}

}  // namespace modelpool::fault
