// File: shm/format/gguf_values.hpp
//
// Reads GGUF v2/v3 strings and metadata values (u64 string lengths and array
// counts) from a ByteCursor and maps each value to JSON: integers to JSON
// integers, FLOAT32/64 to numbers, BOOL to true/false, STRING to a string,
// ARRAY (nested ones too) to a JSON array. Every count is checked against the
// bytes left before anything is allocated, strings must be valid UTF-8, array
// nesting and the total number of values are bounded (limits.hpp). A value
// read without `build` is validated just the same but becomes no JSON: it
// allocates nothing, and an array of fixed-size numbers is skipped in O(1)
// (so a 16M-element array costs neither memory nor time until a user asks
// for it). Messages carry no "gguf:" prefix; the caller adds context.
// Internal to shm/format.
#ifndef MODELPOOL_SHM_FORMAT_GGUF_VALUES_HPP_
#define MODELPOOL_SHM_FORMAT_GGUF_VALUES_HPP_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "shm/format/limits.hpp"
#include "shm/format/reader_util.hpp"
#include "shm/status.hpp"

namespace modelpool::format {

// gguf_metadata_value_type.
enum class GgufValueType : std::uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// The fewest bytes a value of `type` occupies, or 0 when `type` is unknown.
std::uint64_t gguf_min_value_bytes(std::uint32_t type);

// One reader per file: it owns the budget of metadata values.
class GgufValueReader {
 public:
  explicit GgufValueReader(ByteCursor* cur) : cur_(cur) {}

  // A length-prefixed string of at most `max_bytes` bytes, valid UTF-8.
  Result<std::string> read_string(std::uint64_t max_bytes);
  // The same, as a view into the file.
  Result<std::string_view> read_string_view(std::uint64_t max_bytes);

  // A value of `type` (a gguf_metadata_value_type read from the file): its
  // JSON with `build`, else null JSON once it is validated. `depth` is the
  // number of arrays enclosing it.
  Result<nlohmann::json> read_value(std::uint32_t type, bool build = true, int depth = 0);

 private:
  Result<nlohmann::json> read_array(bool build, int depth);
  Status truncated(std::string_view what) const;

  ByteCursor* cur_;
  std::uint64_t values_left_ = kMaxGgufMetadataValues;
};

}  // namespace modelpool::format

#endif  // MODELPOOL_SHM_FORMAT_GGUF_VALUES_HPP_
