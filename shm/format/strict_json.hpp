// File: shm/format/strict_json.hpp
//
// JSON parsing for untrusted headers. nlohmann-json alone would accept a key
// repeated within one object (keeping the last value, so two readers of the
// same file could disagree on a tensor's offsets) and nesting of any depth;
// parse_strict_json refuses both. Internal to shm/format; never throws.
#ifndef MODELPOOL_SHM_FORMAT_STRICT_JSON_HPP_
#define MODELPOOL_SHM_FORMAT_STRICT_JSON_HPP_

#include <nlohmann/json.hpp>
#include <string_view>

#include "shm/status.hpp"

namespace modelpool::format {

// `text` as one JSON value (surrounding whitespace allowed, nothing else), or
// load_failed with a printable-ASCII message: "not valid JSON: ...",
// "duplicate key \"k\"" or "nested deeper than N levels". Strings are
// checked to be UTF-8 by the parser.
Result<nlohmann::json> parse_strict_json(std::string_view text);

}  // namespace modelpool::format

#endif  // MODELPOOL_SHM_FORMAT_STRICT_JSON_HPP_
