// File: broker/server/resolution.hpp
//
// The first step of every request that names a model, taken once: what the
// name stands for and what the pool holds of it. Everything later steps
// need comes out of it: the manifest's entry for the name (path, sha256,
// pin), the source of the bytes with its identity, and one of
//
//   kHit      the current entry of the name is READY with this source
//   kLoading  the current entry is LOADING this source: join that load
//   kStale    the current entry has another source (the file changed)
//   kMiss     the pool holds nothing of the name
//
// It runs in two parts: resolve() takes the manifest and the warm path (a
// READY entry whose file still has its identity, by one fstatat), and
// open() — for anything but a warm hit — opens the source and classifies.
// Between them the caller may change the pool (take releases, which can
// evict), so `current` is looked up by open() after that.
//
// Sources: open() opens a file below --models, or one of the Hugging Face
// cache (the member files of hf: repositories, hf:REPO@COMMIT/FILE), through
// NameResolver. A name neither has is located on the origins (the Service,
// service_remote.cc) and classified here. A source gives an identity the
// pool keys its entries by (and shares one copy per identity) and what the
// loader reads. An entry from an origin (is_remote) is a warm hit while no
// local file of its name appears: its bytes were verified when they came.
#ifndef MODELPOOL_BROKER_SERVER_RESOLUTION_HPP_
#define MODELPOOL_BROKER_SERVER_RESOLUTION_HPP_

#include <memory>
#include <optional>
#include <string>

#include "broker/manifest.hpp"
#include "broker/origin/origins.hpp"
#include "broker/pool/pool.hpp"
#include "broker/store/hf_cache.hpp"
#include "broker/store/name_resolver.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

struct Resolution {
  enum class State { kHit, kLoading, kStale, kMiss };
  std::string model;   // the name asked for
  std::string path;    // below --models: the manifest's path for it, or the name itself
  std::string sha256;  // the manifest's digest of it, or ""
  bool pin = false;    // the manifest pins it
  // Not ok: the name cannot be served (invalid_name, forbidden, not_found).
  Status status;
  // Where `path` is: --models, or the Hugging Face cache for hf: file names
  // (hf_file_path); null when the name asks for a cache the broker lacks.
  const NameResolver* root = nullptr;
  std::optional<ResolvedFile> file;  // the open source; none for a warm hit
  // A name from an origin (origins.hpp) that is downloaded into the pool;
  // `file` then has the remote identity and no fd. A disk tier hit is a
  // `file` (the blob) with the remote identity, read by the loader.
  std::shared_ptr<const Located> remote;
  const EntryInfo* current = nullptr;
  State state = State::kMiss;

  bool hit() const { return status.ok() && state == State::kHit; }
};

class Resolver {
 public:
  // `hf`: the Hugging Face cache, or null when the broker has none.
  Resolver(const NameResolver& names, const HfCache* hf, const Pool& pool)
      : names_(names), hf_(hf), pool_(pool) {}

  // The Hugging Face cache once the broker has opened it.
  void set_hf(const HfCache* hf) { hf_ = hf; }

  // The manifest in force (nullptr: names are paths). Swapped on SIGHUP.
  void set_manifest(std::shared_ptr<const Manifest> m) { manifest_ = std::move(m); }
  const Manifest* manifest() const { return manifest_.get(); }

  // The manifest's entry and the warm path: kHit with `current` when the
  // current entry is READY and the file still has its identity; else kMiss
  // with nothing opened yet (call open()).
  Resolution resolve(const std::string& model) const;
  // Opens the source of `r` and classifies it against the pool as it is
  // now. `r.status` says why when the source cannot be opened.
  void open(Resolution& r) const;
  // Sets `current` and `state` of `r`, whose `file` is set, against the
  // pool as it is now.
  void classify(Resolution& r) const;

 private:
  const NameResolver& names_;
  const HfCache* hf_;
  const Pool& pool_;
  std::shared_ptr<const Manifest> manifest_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_RESOLUTION_HPP_
