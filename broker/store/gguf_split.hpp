// File: broker/store/gguf_split.hpp
//
// llama.cpp's split GGUF sets (gguf-split): PREFIX-00001-of-00003.gguf,
// PREFIX-00002-of-00003.gguf, ... Each part carries split.no (0-based),
// split.count and split.tensors.count in its metadata; the first part also
// carries the model's metadata. A name of any part stands for the whole set.
// gguf_split_set checks the set before anything is loaded: every part is
// there, says which part it is and how many there are, agrees with the others
// on the tensor count, and the parts' tensors add up to it. Parts are opened
// through the NameResolver (confined), and read through a private read-only
// mapping of their headers.
#ifndef MODELPOOL_BROKER_STORE_GGUF_SPLIT_HPP_
#define MODELPOOL_BROKER_STORE_GGUF_SPLIT_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/store/name_resolver.hpp"
#include "shm/status.hpp"

namespace modelpool::broker {

struct SplitName {
  std::string prefix;  // everything before "-NNNNN-of-NNNNN.gguf", directory included
  unsigned no = 0;     // 1-based, as in the name
  unsigned count = 0;
};

// The parts of a name that follows gguf-split's pattern, or nullopt.
std::optional<SplitName> parse_split_name(std::string_view name);
// PREFIX-NNNNN-of-NNNNN.gguf for part `no` (1-based) of `count`.
std::string split_part_name(std::string_view prefix, unsigned no, unsigned count);

struct SplitSet {
  std::vector<std::string> parts;  // names, in order
  std::uint64_t tensors = 0;       // split.tensors.count
  std::uint64_t bytes = 0;         // all parts
};

// The split set `name` (a part of it) belongs to. load_failed, with the
// part and the reason, for an incomplete or inconsistent set; not_found when
// `name` itself does not exist; forbidden when a part leads outside the root.
Result<SplitSet> gguf_split_set(const NameResolver& names, std::string_view name);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_GGUF_SPLIT_HPP_
