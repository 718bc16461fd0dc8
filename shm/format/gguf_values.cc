// File: shm/format/gguf_values.cc
//
// GGUF metadata values to JSON. Recursion is bounded by kMaxGgufArrayDepth.
#include "shm/format/gguf_values.hpp"

#include <bit>
#include <utility>

#include "shm/format/utf8.hpp"

namespace modelpool::format {
namespace {

using json = nlohmann::json;

Status fail(std::string msg) { return error(ErrorCode::kLoadFailed, std::move(msg)); }

template <typename Wire, typename Out>
bool scalar(ByteCursor* cur, json* out) {
  Wire v{};
  if (!cur->read(&v)) return false;
  *out = static_cast<Out>(v);
  return true;
}

// Reads a fixed-size numeric value of `type` into `out`; false when the file
// ends first or `type` is not a number type.
bool read_number(ByteCursor* cur, GgufValueType type, json* out) {
  switch (type) {
    case GgufValueType::kUint8:
      return scalar<std::uint8_t, std::uint64_t>(cur, out);
    case GgufValueType::kInt8:
      return scalar<std::int8_t, std::int64_t>(cur, out);
    case GgufValueType::kUint16:
      return scalar<std::uint16_t, std::uint64_t>(cur, out);
    case GgufValueType::kInt16:
      return scalar<std::int16_t, std::int64_t>(cur, out);
    case GgufValueType::kUint32:
      return scalar<std::uint32_t, std::uint64_t>(cur, out);
    case GgufValueType::kInt32:
      return scalar<std::int32_t, std::int64_t>(cur, out);
    case GgufValueType::kUint64:
      return scalar<std::uint64_t, std::uint64_t>(cur, out);
    case GgufValueType::kInt64:
      return scalar<std::int64_t, std::int64_t>(cur, out);
    case GgufValueType::kFloat32: {
      std::uint32_t bits = 0;
      if (!cur->read(&bits)) return false;
      *out = static_cast<double>(std::bit_cast<float>(bits));
      return true;
    }
    case GgufValueType::kFloat64: {
      std::uint64_t bits = 0;
      if (!cur->read(&bits)) return false;
      *out = std::bit_cast<double>(bits);
      return true;
    }
    default:
      return false;
  }
}

// Fixed-size numbers, whose every bit pattern is a valid value.
bool is_number_type(std::uint32_t type) {
  switch (static_cast<GgufValueType>(type)) {
    case GgufValueType::kBool:
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return false;
    default:
      return type <= static_cast<std::uint32_t>(GgufValueType::kFloat64);
  }
}

}  // namespace

std::uint64_t gguf_min_value_bytes(std::uint32_t type) {
  switch (static_cast<GgufValueType>(type)) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:  // the length
      return 8;
    case GgufValueType::kArray:  // element type and count
      return 4 + 8;
  }
  return 0;
}

Status GgufValueReader::truncated(std::string_view what) const {
  return fail("file truncated at byte " + std::to_string(cur_->pos()) + " reading " +
              std::string(what));
}

Result<std::string> GgufValueReader::read_string(std::uint64_t max_bytes) {
  auto view = read_string_view(max_bytes);
  if (!view.ok()) return view.status();
  return std::string(*view);
}

Result<std::string_view> GgufValueReader::read_string_view(std::uint64_t max_bytes) {
  std::uint64_t len = 0;
  if (!cur_->read(&len)) return truncated("a string length");
  if (len > max_bytes) {
    return fail("string of " + std::to_string(len) + " bytes exceeds the limit of " +
                std::to_string(max_bytes));
  }
  std::string_view bytes;
  if (!cur_->read_bytes(len, &bytes)) {
    return fail("string of " + std::to_string(len) + " bytes at byte " +
                std::to_string(cur_->pos()) + " runs past the end of the file");
  }
  if (!is_valid_utf8(bytes)) return fail("string " + in_quotes(bytes) + " is not valid UTF-8");
  return bytes;
}

Result<json> GgufValueReader::read_value(std::uint32_t type, bool build, int depth) {
  if (values_left_ == 0) {
    return fail("more than " + std::to_string(kMaxGgufMetadataValues) + " metadata values");
  }
  --values_left_;
  const std::uint64_t min_bytes = gguf_min_value_bytes(type);
  if (min_bytes == 0) return fail("unknown metadata value type " + std::to_string(type));
  switch (static_cast<GgufValueType>(type)) {
    case GgufValueType::kString: {
      auto s = read_string_view(kMaxGgufStringBytes);
      if (!s.ok()) return s.status();
      return build ? json(std::string(*s)) : json();
    }
    case GgufValueType::kArray:
      if (depth >= kMaxGgufArrayDepth) {
        return fail("arrays nested deeper than " + std::to_string(kMaxGgufArrayDepth) + " levels");
      }
      return read_array(build, depth);
    case GgufValueType::kBool: {
      std::uint8_t b = 0;
      if (!cur_->read(&b)) return truncated("a bool value");
      if (b > 1) return fail("bool value " + std::to_string(b) + " is neither 0 nor 1");
      return build ? json(b == 1) : json();
    }
    default: {
      json v;
      if (!read_number(cur_, static_cast<GgufValueType>(type), &v)) {
        return truncated("a metadata value");
      }
      return build ? v : json();
    }
  }
}

Result<json> GgufValueReader::read_array(bool build, int depth) {
  std::uint32_t elem_type = 0;
  std::uint64_t len = 0;
  if (!cur_->read(&elem_type) || !cur_->read(&len)) return truncated("an array header");
  const std::uint64_t min_bytes = gguf_min_value_bytes(elem_type);
  if (min_bytes == 0) {
    return fail("unknown metadata value type " + std::to_string(elem_type) + " in an array");
  }
  if (len > values_left_) {
    return fail("array of " + std::to_string(len) + " elements exceeds the limit of " +
                std::to_string(kMaxGgufMetadataValues) + " metadata values");
  }
  if (len > cur_->remaining() / min_bytes) {
    return fail("array of " + std::to_string(len) + " elements cannot fit in the " +
                std::to_string(cur_->remaining()) + " bytes left");
  }
  if (!build && is_number_type(elem_type)) {
    // Any bytes are valid numbers: count them and step over.
    values_left_ -= len;
    std::string_view skipped;
    (void)cur_->read_bytes(len * min_bytes, &skipped);  // fits: checked above
    return json();
  }
  json arr = json::array();
  if (build) arr.get_ref<json::array_t&>().reserve(len);
  for (std::uint64_t i = 0; i < len; ++i) {
    auto v = read_value(elem_type, build, depth + 1);
    if (!v.ok()) return v.status();
    if (build) arr.push_back(std::move(*v));
  }
  return build ? arr : json();
}

}  // namespace modelpool::format
