// File: broker/store/group_plan.hpp
//
// Models made of several files, served as one: a repository (a directory
// below --models), a snapshot of the Hugging Face cache (hf:ORG/NAME[@REV])
// and a GGUF split set (any part's name). plan_group() says which files a
// name stands for, each under the name the pool keeps its bytes by (an
// ordinary file name below --models, or hf:REPO@COMMIT/FILE), so that one
// file shared by two repositories or revisions is one entry and one copy.
// check_group_tensors() runs once the files are in the segment: the weights
// files' tensors form one namespace (no tensor in two files, and every tensor
// the index names is in the shard it names). Pure: it reads directories and
// headers, loads nothing.
#ifndef MODELPOOL_BROKER_STORE_GROUP_PLAN_HPP_
#define MODELPOOL_BROKER_STORE_GROUP_PLAN_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/store/hf_cache.hpp"
#include "broker/store/name_resolver.hpp"
#include "broker/store/repository.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

struct GroupMember {
  std::string entry;  // the pool entry's name
  std::string file;   // its name in the model ("model-00001-of-00002.safetensors")
  bool weights = false;
  std::uint64_t size = 0;
};

struct GroupPlan {
  std::string name;                  // as asked
  std::string commit;                // hf: names: the snapshot's commit
  std::vector<GroupMember> members;  // weights in index (or part) order, then small files
  std::vector<std::pair<std::string, std::string>> weight_map;  // (tensor, file) of the index
  // What the plan was read from (below `stamp_root`): while stamp() is the
  // same, the plan is (the directory's entries, the index, the ref and the
  // snapshot, the parts of a split set). The files' own contents are checked
  // by the pool on every acquire.
  const NameResolver* stamp_root = nullptr;
  std::vector<std::string> stamp_paths;
  // `newest_ns`, when given, gets the latest change time among them.
  std::string stamp(std::int64_t* newest_ns = nullptr) const;
  std::uint64_t bytes() const;
};

// The files `name` stands for, or nullopt when it is not a model of several
// files (a plain file: served as one). `path` is what the name means below
// --models (the manifest's path for it, or the name). `hf` is the Hugging
// Face cache, null when the broker has none (hf: names are then not_found).
// Errors are those of scan_repository, HfCache::snapshot and gguf_split_set.
Result<std::optional<GroupPlan>> plan_group(const std::string& name, const std::string& path,
                                            const NameResolver& names, const HfCache* hf,
                                            const RepositoryLimits& limits);

// The plan of snapshot `commit` of hf repository `repo` made of `files`
// (from the cache, or from a hub): its members named hf:REPO@COMMIT/FILE.
GroupPlan hf_group_plan(const std::string& name, const std::string& repo, const std::string& commit,
                        RepositoryFiles files);

// One weights file as it lies in the segment.
struct PlacedFile {
  const GroupMember* member = nullptr;
  std::uint64_t offset = 0, size = 0;  // in the segment `fd`
  layout::Format format = layout::Format::kRaw;
};

// load_failed naming the tensor and the files when a tensor is in two of
// `files`, or the index names a tensor its shard does not hold. Maps each
// file's extent of `fd` read-only for as long as it reads the header.
Status check_group_tensors(const GroupPlan& plan, int fd, const std::vector<PlacedFile>& files);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_GROUP_PLAN_HPP_
