// File: broker/store/hf_cache.hpp
//
// Names of the form hf:ORG/NAME and hf:ORG/NAME@REVISION, resolved in a
// Hugging Face hub cache (huggingface_hub's layout, read only, never written):
//
//   CACHE/models--ORG--NAME/refs/REVISION        a branch or tag: its commit
//   CACHE/models--ORG--NAME/snapshots/COMMIT/F   a symlink to ../../blobs/ETAG
//   CACHE/models--ORG--NAME/blobs/ETAG           the bytes
//
// A revision is a branch or tag (read through refs/), or a full commit hash.
// Every file is opened below the cache root with openat2(RESOLVE_BENEATH)
// (NameResolver), so a snapshot symlink that leaves the cache is refused. Two
// revisions that share a blob resolve to the same file (the same inode), and
// so to one copy in the pool. Thread-compatible (const after open).
#ifndef MODELPOOL_BROKER_STORE_HF_CACHE_HPP_
#define MODELPOOL_BROKER_STORE_HF_CACHE_HPP_

#include <optional>
#include <string>
#include <string_view>

#include "broker/store/name_resolver.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

inline constexpr std::string_view kHfPrefix = "hf:";

// True when `name` asks for the Hugging Face cache ("hf:...").
inline bool is_hf_name(std::string_view name) { return name.substr(0, 3) == kHfPrefix; }

struct HfName {
  std::string repo;      // "ORG/NAME" (or "NAME")
  std::string revision;  // "main" unless the name gives one
};

// invalid_name unless `name` is hf:REPO[@REVISION] with a well-formed repo id
// (letters, digits, '.', '_', '-', at most one '/', no "--" or "..") and
// revision (a commit hash, or a branch or tag: those characters and '/').
Result<HfName> parse_hf_name(std::string_view name);

// One file of a snapshot, named for the pool: hf:REPO@COMMIT/FILE (COMMIT
// the 40-hex commit), and back to its path below the cache root
// (models--ORG--NAME/snapshots/COMMIT/FILE); nullopt for any other name.
std::string hf_file_name(std::string_view repo, std::string_view commit, std::string_view file);
std::optional<std::string> hf_file_path(std::string_view name);

// --hf-cache's default: $HF_HUB_CACHE, else $HF_HOME/hub, else
// ~/.cache/huggingface/hub ("" when none of them can be formed).
std::string default_hf_cache();

// One revision of a repository, found in the cache.
struct HfSnapshot {
  std::string repo;      // as asked
  std::string revision;  // as asked
  std::string commit;    // the 40-hex commit it resolved to
  std::string dir;       // models--ORG--NAME/snapshots/COMMIT, below the cache root
};

class HfCache {
 public:
  // not_found when `root` cannot be opened.
  static Result<HfCache> open(const std::string& root);

  // The snapshot `name` names now. not_found when the repository or the
  // revision is not in the cache; the message lists the revisions that are.
  // load_failed for a ref that does not hold a commit hash.
  Result<HfSnapshot> snapshot(const HfName& name) const;

  // Opens files below the cache root: `snapshot.dir + "/" + file`.
  const NameResolver& files() const { return files_; }
  const std::string& root() const { return files_.root(); }

 private:
  explicit HfCache(NameResolver files) : files_(std::move(files)) {}
  // "refs main, v1.0; snapshots 0123456789ab, ..." for not_found messages.
  std::string what_is_there(const std::string& repo_dir) const;

  NameResolver files_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_HF_CACHE_HPP_
