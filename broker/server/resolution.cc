// File: broker/server/resolution.cc
#include "broker/server/resolution.hpp"

#include <utility>

namespace modelpool::broker {

Resolution Resolver::resolve(const std::string& model) const {
  Resolution r;
  r.model = model;
  if (const ManifestEntry* listed = manifest_ ? manifest_->find(model) : nullptr) {
    r.path = listed->path;
    r.sha256 = listed->sha256;
    r.pin = listed->pin;
  } else {
    r.path = model;
  }
  r.root = &names_;
  if (auto in_cache = hf_file_path(r.path)) {
    r.path = std::move(*in_cache);
    r.root = hf_ != nullptr ? &hf_->files() : nullptr;
  }
  const EntryInfo* hot = pool_.find_current(model);
  if (hot != nullptr && hot->state == layout::EntryState::kReady &&
      validate_model_name(r.path).ok()) {
    // Warm path: one fstatat instead of openat2 + fstat + close.
    auto id = r.root != nullptr ? r.root->quick_identity(r.path) : std::nullopt;
    if (id ? *id == hot->source : is_remote(hot->source)) {
      r.current = hot;
      r.state = Resolution::State::kHit;
    }
  }
  return r;
}

void Resolver::open(Resolution& r) const {
  if (r.root == nullptr) {
    r.status = error(ErrorCode::kNotFound,
                     "no Hugging Face cache to serve \"" + r.model + "\" from (--hf-cache)");
    return;
  }
  auto file = r.root->resolve(r.path);
  if (!file.ok()) {
    r.status = file.status();
    return;
  }
  r.file = std::move(file).value();
  classify(r);
}

void Resolver::classify(Resolution& r) const {
  r.current = pool_.find_current(r.model);
  using State = Resolution::State;
  if (r.current == nullptr) {
    r.state = State::kMiss;
  } else if (r.current->source != r.file->identity()) {
    r.state = State::kStale;
  } else {
    r.state = r.current->state == layout::EntryState::kReady ? State::kHit : State::kLoading;
  }
}

}  // namespace modelpool::broker
