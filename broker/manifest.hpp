// File: broker/manifest.hpp
//
// The optional model manifest (--manifest FILE): model name -> file path
// (relative to --models), revision, sha256, pin, preload. Accepted shapes:
//
//   {"models": {"llama-7b": {"path": "llama/7b.gguf", "sha256": "...", "pin": true}}}
//   {"llama-7b": "llama/7b.gguf", "bert": {"path": "bert.safetensors", "preload": true}}
//
// A broken manifest is an error naming the line and the reason. Immutable
// once parsed; a SIGHUP swaps in a freshly parsed one.
#ifndef MODELPOOL_BROKER_MANIFEST_HPP_
#define MODELPOOL_BROKER_MANIFEST_HPP_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shm/status.hpp"

namespace modelpool::broker {

struct ManifestEntry {
  std::string path;      // below the models root
  std::string revision;  // informational
  std::string sha256;    // 64 lowercase hex digits, or empty
  std::string origin;    // an origin (as --origin) asked first for `path`, or empty
  bool pin = false;
  bool preload = false;
  bool operator==(const ManifestEntry&) const = default;
};

class Manifest {
 public:
  static Result<Manifest> load(const std::string& file);
  static Result<Manifest> parse(const std::string& text, const std::string& file);

  const ManifestEntry* find(const std::string& name) const;
  const std::map<std::string, ManifestEntry>& entries() const { return entries_; }
  // Human summary of what differs from `before` ("added a, changed b").
  std::string diff(const Manifest& before) const;

 private:
  std::map<std::string, ManifestEntry> entries_;
};

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_MANIFEST_HPP_
