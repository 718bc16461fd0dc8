// File: broker/store/group_plan.cc
#include "broker/store/group_plan.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "broker/store/gguf_split.hpp"
#include "shm/format/tensor_index.hpp"

namespace modelpool::broker {
namespace {

std::string base_name(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The members of a repository found in directory `dir` of `root`, named for
// the pool by `entry_of(file)`.
template <typename EntryOf>
GroupPlan from_repository(const std::string& name, RepositoryFiles files, EntryOf entry_of) {
  GroupPlan plan;
  plan.name = name;
  for (const RepositoryFile& f : files.weights) {
    plan.members.push_back({entry_of(f.name), f.name, true, f.size});
  }
  for (const RepositoryFile& f : files.small) {
    plan.members.push_back({entry_of(f.name), f.name, false, f.size});
  }
  plan.weight_map = std::move(files.weight_map);
  return plan;
}

Result<std::optional<GroupPlan>> plan_hf(const std::string& name, const std::string& path,
                                         const HfCache* hf, const RepositoryLimits& limits) {
  auto parsed = parse_hf_name(path);
  if (!parsed.ok()) return parsed.status();
  if (hf == nullptr) {
    return error(ErrorCode::kNotFound, "no Hugging Face cache to serve \"" + path +
                                           "\" from (--hf-cache, $HF_HUB_CACHE, $HF_HOME)");
  }
  auto snap = hf->snapshot(*parsed);
  if (!snap.ok()) return snap.status();
  auto files = scan_repository(hf->files(), snap->dir, limits);
  if (!files.ok()) {
    return error(files.status().code(),
                 path + " (commit " + snap->commit + "): " + files.status().message());
  }
  GroupPlan plan = hf_group_plan(name, parsed->repo, snap->commit, std::move(files).value());
  plan.stamp_root = &hf->files();
  const std::string repo_dir = snap->dir.substr(0, snap->dir.find("/snapshots/"));
  plan.stamp_paths = {repo_dir + "/refs/" + parsed->revision, snap->dir};
  return std::optional<GroupPlan>(std::move(plan));
}

}  // namespace

GroupPlan hf_group_plan(const std::string& name, const std::string& repo, const std::string& commit,
                        RepositoryFiles files) {
  GroupPlan plan = from_repository(
      name, std::move(files), [&](const std::string& f) { return hf_file_name(repo, commit, f); });
  plan.commit = commit;
  return plan;
}

std::string GroupPlan::stamp(std::int64_t* newest_ns) const {
  if (stamp_root == nullptr) return "";  // from a hub: kept for a while (the Service)
  std::string out;
  for (const std::string& p : stamp_paths) {
    std::int64_t changed = 0;
    out += stamp_root->stamp(p, &changed) + "|";
    if (newest_ns != nullptr) *newest_ns = std::max(*newest_ns, changed);
  }
  return out;
}

std::uint64_t GroupPlan::bytes() const {
  std::uint64_t n = 0;
  for (const auto& m : members) n += m.size;
  return n;
}

Result<std::optional<GroupPlan>> plan_group(const std::string& name, const std::string& path,
                                            const NameResolver& names, const HfCache* hf,
                                            const RepositoryLimits& limits) {
  if (is_hf_name(path)) {
    if (hf_file_path(path)) return std::optional<GroupPlan>();  // one file of a snapshot
    return plan_hf(name, path, hf, limits);
  }
  if (auto split = parse_split_name(path); split && split->count > 1) {
    auto set = gguf_split_set(names, path);
    if (!set.ok()) return set.status();
    GroupPlan plan;
    plan.name = name;
    for (const std::string& part : set->parts) {
      auto file = names.resolve(part);
      if (!file.ok()) return file.status();
      plan.members.push_back({part, base_name(part), true, file->identity().size});
      plan.stamp_paths.push_back(part);
    }
    const std::size_t slash = path.rfind('/');
    plan.stamp_paths.push_back(slash == std::string::npos ? "." : path.substr(0, slash));
    plan.stamp_root = &names;
    return std::optional<GroupPlan>(std::move(plan));
  }
  if (!validate_model_name(path).ok() || !names.list(path).ok()) {
    return std::optional<GroupPlan>();  // not a directory: a file, or an error the file path names
  }
  auto files = scan_repository(names, path, limits);
  if (!files.ok()) return files.status();
  GroupPlan plan = from_repository(name, std::move(files).value(),
                                   [&](const std::string& f) { return path + "/" + f; });
  plan.stamp_root = &names;
  plan.stamp_paths = {path, path + "/" + std::string(kSafetensorsIndex)};
  return std::optional<GroupPlan>(std::move(plan));
}

Status check_group_tensors(const GroupPlan& plan, int fd, const std::vector<PlacedFile>& files) {
  std::unordered_map<std::string, std::string> where;                     // tensor -> file
  std::unordered_map<std::string, std::unordered_set<std::string>> held;  // file -> tensors
  for (const PlacedFile& f : files) {
    if (f.format == layout::Format::kRaw || f.size == 0) continue;
    void* p = ::mmap(nullptr, f.size, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(f.offset));
    if (p == MAP_FAILED) {
      return error(ErrorCode::kInternal, "cannot map " + f.member->file + " to read its tensors");
    }
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(p), f.size);
    auto index = f.format == layout::Format::kGguf
                     ? format::parse_gguf(bytes, format::MetadataFilter::none())
                     : format::parse_safetensors(bytes);
    ::munmap(p, f.size);
    if (!index.ok()) {
      return error(ErrorCode::kLoadFailed, f.member->file + ": " + index.status().message());
    }
    auto& mine = held[f.member->file];
    for (const format::TensorInfo& t : index->tensors) {
      auto [it, fresh] = where.emplace(t.name, f.member->file);
      if (!fresh) {
        return error(ErrorCode::kLoadFailed, plan.name + ": tensor \"" + t.name + "\" is in both " +
                                                 it->second + " and " + f.member->file);
      }
      mine.insert(t.name);
    }
  }
  for (const auto& [tensor, file] : plan.weight_map) {
    auto it = held.find(file);
    if (it == held.end() || it->second.count(tensor) == 0) {
      return error(ErrorCode::kLoadFailed, plan.name + ": the index names tensor \"" + tensor +
                                               "\" in " + file + ", which does not hold it");
    }
  }
  return {};
}

}  // namespace modelpool::broker
