// File: shm/format/safetensors.cc
//
// The safetensors reader. Layout: an 8-byte little-endian header length N,
// N bytes of JSON (tensor name -> {dtype, shape, data_offsets}, plus an
// optional "__metadata__" of string -> string), then the data section;
// data_offsets are relative to the data section's first byte. The index gives
// file offsets and lists the tensors by offset: the JSON object's key order
// is not preserved by the parser, and offset order is what every writer
// produces in practice. Gaps between tensors are allowed (the format does not
// need them, but they are harmless); overlaps are not.
#include <array>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "shm/format/extents.hpp"
#include "shm/format/limits.hpp"
#include "shm/format/reader_util.hpp"
#include "shm/format/strict_json.hpp"
#include "shm/format/tensor_index.hpp"

namespace modelpool::format {
namespace {

using json = nlohmann::json;

Status fail(const std::string& msg) { return error(ErrorCode::kLoadFailed, "safetensors: " + msg); }

struct Dtype {
  std::string_view name;
  std::uint64_t size;
};

// The safetensors Dtype enum, minus the sub-byte float types (F4, F6_*).
constexpr std::array<Dtype, 18> kDtypes = {{
    {"BOOL", 1},
    {"U8", 1},
    {"I8", 1},
    {"F8_E5M2", 1},
    {"F8_E4M3", 1},
    {"F8_E8M0", 1},
    {"I16", 2},
    {"U16", 2},
    {"F16", 2},
    {"BF16", 2},
    {"I32", 4},
    {"U32", 4},
    {"F32", 4},
    {"F64", 8},
    {"I64", 8},
    {"U64", 8},
    {"C64", 8},
    {"C128", 16},
}};

std::uint64_t dtype_size(std::string_view name) {
  for (const Dtype& d : kDtypes) {
    if (d.name == name) return d.size;
  }
  return 0;
}

const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// The non-negative integer `v` fits an int64, or nullopt.
std::optional<std::uint64_t> as_count(const json& v) {
  if (!v.is_number_unsigned()) return std::nullopt;  // negatives parse as number_integer
  const auto n = v.get<std::uint64_t>();
  if (n > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return n;
}

// Fills t.shape; returns the element count.
Result<std::uint64_t> read_shape(const json& entry, TensorInfo* t) {
  const json* shape = field(entry, "shape");
  if (shape == nullptr || !shape->is_array()) {
    return fail("tensor " + in_quotes(t->name) + ": \"shape\" must be an array");
  }
  std::uint64_t elements = 1;
  for (const json& d : *shape) {
    const auto n = as_count(d);
    if (!n) {
      return fail("tensor " + in_quotes(t->name) + ": shape entries must be non-negative integers");
    }
    if (!checked_mul(elements, *n, &elements)) {
      return fail("tensor " + in_quotes(t->name) + ": shape element count overflows 64 bits");
    }
    t->shape.push_back(static_cast<std::int64_t>(*n));
  }
  return elements;
}

// The tensor `name` described by `entry`, offsets relative to the data section
// of `data_size` bytes starting at file offset `data_begin`.
Result<TensorInfo> read_tensor(const std::string& name, const json& entry, std::uint64_t data_begin,
                               std::uint64_t data_size) {
  TensorInfo t;
  t.name = name;
  if (!entry.is_object()) return fail("tensor " + in_quotes(name) + ": entry is not an object");
  const json* dtype = field(entry, "dtype");
  if (dtype == nullptr || !dtype->is_string()) {
    return fail("tensor " + in_quotes(name) + ": \"dtype\" must be a string");
  }
  t.dtype = dtype->get<std::string>();
  const std::uint64_t elem_size = dtype_size(t.dtype);
  if (elem_size == 0) {
    return fail("tensor " + in_quotes(name) + ": unknown dtype " + in_quotes(t.dtype));
  }
  auto elements = read_shape(entry, &t);
  if (!elements.ok()) return elements.status();
  std::uint64_t bytes = 0;
  if (!checked_mul(*elements, elem_size, &bytes)) {
    return fail("tensor " + in_quotes(name) + ": byte size overflows 64 bits");
  }
  const json* offs = field(entry, "data_offsets");
  std::optional<std::uint64_t> begin;
  std::optional<std::uint64_t> end;
  if (offs != nullptr && offs->is_array() && offs->size() == 2) {
    begin = as_count((*offs)[0]);
    end = as_count((*offs)[1]);
  }
  if (!begin || !end || *begin > *end) {
    return fail("tensor " + in_quotes(name) +
                ": \"data_offsets\" must be [begin, end] with 0 <= begin <= end");
  }
  if (*end - *begin != bytes) {
    return fail("tensor " + in_quotes(name) + ": data_offsets span " +
                std::to_string(*end - *begin) + " bytes, which does not match the " +
                std::to_string(bytes) + " bytes of " + t.dtype + " with its shape");
  }
  if (*end > data_size) {
    return fail("tensor " + in_quotes(name) + ": data_offsets end " + std::to_string(*end) +
                " lies outside the data section of " + std::to_string(data_size) + " bytes");
  }
  t.offset = data_begin + *begin;  // cannot overflow: *begin <= data_size
  t.size = bytes;
  return t;
}

Status read_metadata(const json& meta, json* out) {
  if (!meta.is_object()) return fail("\"__metadata__\" must be an object");
  for (const auto& [k, v] : meta.items()) {
    if (!v.is_string()) {
      return fail("\"__metadata__\" value of " + in_quotes(k) + " is not a string");
    }
  }
  *out = meta;
  return Status::ok_status();
}

Result<TensorIndex> parse_safetensors_unguarded(std::span<const std::byte> file) {
  ByteCursor cur(file);
  std::uint64_t n = 0;
  if (!cur.read(&n)) {
    return fail("file of " + std::to_string(file.size()) +
                " bytes is shorter than the 8-byte header length");
  }
  if (n > kMaxSafetensorsHeaderBytes) {
    return fail("header length " + std::to_string(n) + " exceeds the limit of " +
                std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  std::string_view text;
  if (!cur.read_bytes(n, &text)) {
    return fail("header length " + std::to_string(n) + " runs past the end of the file (" +
                std::to_string(cur.remaining()) + " bytes follow the length)");
  }
  auto doc = parse_strict_json(text);
  if (!doc.ok()) return fail("header: " + doc.status().message());
  if (!doc->is_object()) return fail("header is not a JSON object");

  TensorIndex index;
  index.format = layout::Format::kSafetensors;
  const std::uint64_t data_begin = cur.pos();
  for (const auto& [name, entry] : doc->items()) {
    if (name == "__metadata__") {
      if (Status s = read_metadata(entry, &index.metadata); !s.ok()) return s;
      continue;
    }
    auto t = read_tensor(name, entry, data_begin, cur.remaining());
    if (!t.ok()) return t.status();
    index.tensors.push_back(std::move(*t));
  }
  Status placed = place_tensors("safetensors", &index.tensors, data_begin, file.size());
  if (!placed.ok()) return placed;
  return index;
}

}  // namespace

Result<TensorIndex> parse_safetensors(std::span<const std::byte> file) {
  try {
    return parse_safetensors_unguarded(file);
  } catch (const std::exception& e) {  // std::bad_alloc; JSON errors are handled inside
    return fail(std::string("cannot read the index: ") + printable(e.what(), 200));
  }
}

}  // namespace modelpool::format
