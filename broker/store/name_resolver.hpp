// File: broker/store/name_resolver.hpp
//
// Turns a model name from a client into an open file below the models root.
// Names are relative paths; "..", absolute paths, empty or "." components and
// control characters are invalid_name. Resolution uses openat2 with
// RESOLVE_BENEATH, so a symlink that leads outside the root is forbidden even
// if it is swapped in between checks. Thread-compatible (const after open).
#ifndef MODELPOOL_BROKER_STORE_NAME_RESOLVER_HPP_
#define MODELPOOL_BROKER_STORE_NAME_RESOLVER_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shm/layout/segment_layout.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

// An open, regular model file; closes its fd when destroyed. Move-only.
class ResolvedFile {
 public:
  ResolvedFile() = default;
  ResolvedFile(int fd, layout::SourceIdentity identity, std::string name = {})
      : fd_(fd), identity_(identity), name_(std::move(name)) {}
  ResolvedFile(ResolvedFile&& other) noexcept;
  ResolvedFile& operator=(ResolvedFile&& other) noexcept;
  ResolvedFile(const ResolvedFile&) = delete;
  ResolvedFile& operator=(const ResolvedFile&) = delete;
  ~ResolvedFile();

  int fd() const { return fd_; }
  const layout::SourceIdentity& identity() const { return identity_; }
  // The path below the models root it was resolved from: its extension says
  // which format the file promises (format::format_for_name).
  const std::string& name() const { return name_; }
  // A path that reopens exactly this file (for the loader).
  std::string proc_path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
  layout::SourceIdentity identity_;
  std::string name_;
};

class NameResolver {
 public:
  // Opens the models root; load_failed/not_found when it is missing.
  static Result<NameResolver> open(const std::string& root);
  NameResolver(NameResolver&& other) noexcept;
  NameResolver& operator=(NameResolver&&) = delete;
  NameResolver(const NameResolver&) = delete;
  ~NameResolver();

  // invalid_name, forbidden (escapes the root), not_found, or the file.
  Result<ResolvedFile> resolve(std::string_view name) const;

  // The identity of what `name` names now, by one fstatat (symlinks followed,
  // not confined), or nullopt. Only for the warm path: a match with a
  // resident entry's identity proves the bytes are the ones resolve() once
  // confined; anything else must go through resolve(). `name` must be valid.
  std::optional<layout::SourceIdentity> quick_identity(const std::string& name) const;

  // What `name` (a file or a directory) is now, by one fstatat as
  // quick_identity(): device, inode, size, modification and change times; ""
  // when there is nothing. Two equal stamps mean nothing was written, added,
  // removed or replaced there in between (for a directory: in its entries).
  // `changed_ns`, when given, gets the change time (ns since the epoch).
  std::string stamp(const std::string& name, std::int64_t* changed_ns = nullptr) const;

  // The names in directory `dir` (a name as resolve() takes them; opened the
  // same way, so confined), sorted, without "." and "..". not_found when it
  // is not a directory.
  Result<std::vector<std::string>> list(std::string_view dir) const;
  // The contents of file `name`, resolved as resolve() does; load_failed when
  // it holds more than `limit` bytes.
  Result<std::string> read_text(std::string_view name, std::size_t limit) const;
  const std::string& root() const { return root_; }

 private:
  NameResolver(int dirfd, std::string root) : dirfd_(dirfd), root_(std::move(root)) {}
  int dirfd_ = -1;
  std::string root_;
};

// invalid_name unless `name` is a well-formed relative model name.
Status validate_model_name(std::string_view name);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_NAME_RESOLVER_HPP_
