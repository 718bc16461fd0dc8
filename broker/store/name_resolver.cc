// File: broker/store/name_resolver.cc
#include "broker/store/name_resolver.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace modelpool::broker {

ResolvedFile::ResolvedFile(ResolvedFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      identity_(other.identity_),
      name_(std::move(other.name_)) {}

ResolvedFile& ResolvedFile::operator=(ResolvedFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    identity_ = other.identity_;
    name_ = std::move(other.name_);
  }
  return *this;
}

ResolvedFile::~ResolvedFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status validate_model_name(std::string_view name) {
  auto bad = [&](const char* why) {
    return error(ErrorCode::kInvalidName, "model name \"" + std::string(name) + "\" " + why);
  };
  if (name.empty()) return error(ErrorCode::kInvalidName, "model name is empty");
  if (name.size() > layout::kMaxNameBytes) return bad("is longer than 255 bytes");
  if (name.front() == '/') return bad("is absolute; names are relative to the models directory");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return bad("contains a control character");
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part == "..") return bad("contains \"..\"");
    if (part.empty() || part == ".") return bad("has an empty or \".\" path component");
    start = end + 1;
  }
  return {};
}

Result<NameResolver> NameResolver::open(const std::string& root) {
  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return error(ErrorCode::kNotFound,
                 "models directory " + root + " cannot be opened: " + std::strerror(errno));
  }
  return NameResolver(fd, root);
}

NameResolver::NameResolver(NameResolver&& other) noexcept
    : dirfd_(std::exchange(other.dirfd_, -1)), root_(std::move(other.root_)) {}

NameResolver::~NameResolver() {
  if (dirfd_ >= 0) ::close(dirfd_);
}

namespace {

layout::SourceIdentity identity_of(const struct stat& st) {
  layout::SourceIdentity id;
  id.device = st.st_dev;
  id.inode = st.st_ino;
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

}  // namespace

std::optional<layout::SourceIdentity> NameResolver::quick_identity(const std::string& name) const {
  struct stat st {};
  if (::fstatat(dirfd_, name.c_str(), &st, 0) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return identity_of(st);
}

std::string NameResolver::stamp(const std::string& name, std::int64_t* changed_ns) const {
  struct stat st {};
  if (::fstatat(dirfd_, name.c_str(), &st, 0) != 0) return {};
  if (changed_ns != nullptr) {
    *changed_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  }
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec);
}

Result<std::vector<std::string>> NameResolver::list(std::string_view dir) const {
  if (auto s = validate_model_name(dir); !s.ok()) return s;
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const std::string path(dir);
  const int fd = static_cast<int>(::syscall(SYS_openat2, dirfd_, path.c_str(), &how, sizeof how));
  if (fd < 0) {
    const int e = errno;
    if (e == EXDEV || e == ELOOP) {
      return error(ErrorCode::kForbidden, "\"" + path + "\" resolves outside " + root_);
    }
    if (e == ENOENT || e == ENOTDIR) {
      return error(ErrorCode::kNotFound, "no directory \"" + path + "\" in " + root_);
    }
    return error(ErrorCode::kLoadFailed, "cannot open \"" + path + "\": " + std::strerror(e));
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return error(ErrorCode::kLoadFailed, "cannot read \"" + path + "\": " + std::strerror(errno));
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> NameResolver::read_text(std::string_view name, std::size_t limit) const {
  auto file = resolve(name);
  if (!file.ok()) return file.status();
  if (file->identity().size > limit) {
    return error(ErrorCode::kLoadFailed, "\"" + std::string(name) + "\" is larger than " +
                                             std::to_string(limit) + " bytes");
  }
  std::string out(file->identity().size, '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n =
        ::pread(file->fd(), out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

Result<ResolvedFile> NameResolver::resolve(std::string_view name) const {
  if (auto s = validate_model_name(name); !s.ok()) return s;
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  std::string path(name);
  int fd = static_cast<int>(::syscall(SYS_openat2, dirfd_, path.c_str(), &how, sizeof how));
  if (fd < 0) {
    int e = errno;
    if (e == EXDEV || e == ELOOP) {
      return error(ErrorCode::kForbidden,
                   "model \"" + path + "\" resolves outside the models directory");
    }
    if (e == ENOENT || e == ENOTDIR) {
      return error(ErrorCode::kNotFound, "no model \"" + path + "\" in " + root_);
    }
    return error(ErrorCode::kLoadFailed, "cannot open model \"" + path + "\": " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return error(ErrorCode::kLoadFailed, "cannot stat model \"" + path + "\": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return error(ErrorCode::kNotFound, "model \"" + path + "\" is not a regular file");
  }
  return ResolvedFile(fd, identity_of(st), std::move(path));
}

}  // namespace modelpool::broker
