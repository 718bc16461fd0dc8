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
  const EntryInfo* hot = pool_.find_current(model);
  if (hot != nullptr && hot->state == layout::EntryState::kReady &&
      validate_model_name(r.path).ok()) {
    // Warm path: one fstatat instead of openat2 + fstat + close.
    if (auto id = names_.quick_identity(r.path); id && *id == hot->source) {
      r.current = hot;
      r.state = Resolution::State::kHit;
    }
  }
  return r;
}

void Resolver::open(Resolution& r) const {
  auto file = names_.resolve(r.path);
  if (!file.ok()) {
    r.status = file.status();
    return;
  }
  r.file = std::move(file).value();
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
