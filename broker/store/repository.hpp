// File: broker/store/repository.hpp
//
// Which files of a model repository (a directory below --models, or a
// snapshot of the Hugging Face cache) make up the model:
//   - its weights: the safetensors shards model.safetensors.index.json's
//     weight_map names, in the order they first appear there, or, without an
//     index, every *.safetensors in the directory, by name;
//   - its small files: configuration, tokenizer and vocabulary files (*.json,
//     *.txt, *.model, *.tiktoken, *.jinja, tokenizer*, vocab*, merges*) of at
//     most `max_small_file` bytes.
// Pickled weights (*.bin, *.pt, *.pth, *.pkl, *.ckpt) are never loaded: they
// run code when unpickled. Only the directory's own files count (not its
// subdirectories). Every file is opened through the NameResolver, so an
// index that names a file outside the repository, or a symlink that leads
// out of the root, is refused. Pure: it reads the directory (or asks the
// hub, for a RepositorySource of broker/origin), loads nothing.
#ifndef MODELPOOL_BROKER_STORE_REPOSITORY_HPP_
#define MODELPOOL_BROKER_STORE_REPOSITORY_HPP_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "broker/store/name_resolver.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

inline constexpr std::string_view kSafetensorsIndex = "model.safetensors.index.json";

struct RepositoryLimits {
  std::uint64_t max_small_file = 16ull << 20;  // --repo-max-small-file
  std::uint64_t max_index = 64ull << 20;       // the index is parsed in the broker
};

struct RepositoryFile {
  std::string name;  // in the repository ("model-00001-of-00002.safetensors")
  std::uint64_t size = 0;
};

struct RepositoryFiles {
  std::vector<RepositoryFile> weights;  // in index order
  std::vector<RepositoryFile> small;    // by name
  std::vector<std::string> skipped;     // "pytorch_model.bin (pickled)", for messages
  bool indexed = false;                 // weights named by model.safetensors.index.json
  // The index's weight_map: (tensor, shard), in its order.
  std::vector<std::pair<std::string, std::string>> weight_map;
  std::uint64_t bytes() const;  // all of them
};

// Where a repository's files are: below --models or in the Hugging Face
// cache (through a NameResolver), or on a hub (broker/origin). Paths are
// "DIR/FILE" as list() names the directory.
class RepositorySource {
 public:
  virtual ~RepositorySource() = default;
  // The names in `dir`, sorted; not_found when there is no such directory.
  virtual Result<std::vector<std::string>> list(const std::string& dir) const = 0;
  // A file's contents; load_failed when larger than `limit`.
  virtual Result<std::string> read_text(const std::string& path, std::size_t limit) const = 0;
  // A regular file's size: not_found (or gone), forbidden (it leads out of
  // the source), anything else a reason to skip a small file.
  virtual Result<std::uint64_t> size(const std::string& path) const = 0;
};

// The files of repository `dir` in `source`. Errors: not_found (no such
// directory, or no safetensors in it), forbidden (the index names a file
// outside the repository), load_failed (a malformed index, a shard it names
// that is missing or not safetensors), with the reason.
Result<RepositoryFiles> scan_repository(const RepositorySource& source, const std::string& dir,
                                        const RepositoryLimits& limits = {});
// ... a directory name as `names` resolves them.
Result<RepositoryFiles> scan_repository(const NameResolver& names, const std::string& dir,
                                        const RepositoryLimits& limits = {});

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_REPOSITORY_HPP_
