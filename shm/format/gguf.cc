// File: shm/format/gguf.cc
//
// The GGUF reader (versions 2 and 3; docs/gguf.md of ggml). Layout: magic
// "GGUF", version u32, tensor_count u64, metadata_kv_count u64, the key-value
// pairs, the tensor infos (name, n_dims u32, ne[n_dims] u64, ggml type u32,
// offset u64 relative to the data section), padding to `general.alignment`
// (default 32), then the data section. Only little-endian files are read.
// TensorInfo.shape is ggml's ne[] as stored: ne[0], the contiguous dimension,
// first (numpy's shape reversed). Tensors are listed by offset.
#include <array>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>

#include "shm/format/extents.hpp"
#include "shm/format/ggml_types.hpp"
#include "shm/format/gguf_values.hpp"
#include "shm/format/limits.hpp"
#include "shm/format/reader_util.hpp"
#include "shm/format/tensor_index.hpp"

namespace modelpool::format {
namespace {

using json = nlohmann::json;

// The fewest bytes of a key-value pair (key length, type, a 1-byte value) and
// of a tensor info (name length, n_dims, type, offset).
constexpr std::uint64_t kMinKvBytes = 8 + 4 + 1;
constexpr std::uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;

Status fail(const std::string& msg) { return error(ErrorCode::kLoadFailed, "gguf: " + msg); }

Status truncated(const ByteCursor& cur, std::string_view what) {
  return fail("file truncated at byte " + std::to_string(cur.pos()) + " reading " +
              std::string(what));
}

Status check_count(const ByteCursor& cur, std::string_view what, std::uint64_t count,
                   std::uint64_t min_bytes) {
  if (count <= cur.remaining() / min_bytes) return Status::ok_status();
  return fail(std::string(what) + " " + std::to_string(count) + " cannot fit in the " +
              std::to_string(cur.remaining()) + " bytes left (each needs at least " +
              std::to_string(min_bytes) + ")");
}

struct Header {
  std::uint64_t tensor_count = 0;
  std::uint64_t kv_count = 0;
};

Result<Header> read_header(ByteCursor* cur) {
  std::string_view magic;
  if (!cur->read_bytes(4, &magic) || magic != "GGUF") return fail("missing the GGUF magic");
  std::uint32_t version = 0;
  if (!cur->read(&version)) return truncated(*cur, "the version");
  if (version == 1) return fail("GGUF version 1 is not supported (only 2 and 3)");
  const std::uint32_t swapped = __builtin_bswap32(version);
  if (swapped >= 1 && swapped <= 3) return fail("big-endian GGUF files are not supported");
  if (version != 2 && version != 3) {
    return fail("unsupported GGUF version " + std::to_string(version) + " (only 2 and 3)");
  }
  Header h;
  if (!cur->read(&h.tensor_count)) return truncated(*cur, "tensor_count");
  if (!cur->read(&h.kv_count)) return truncated(*cur, "metadata_kv_count");
  if (h.tensor_count > kMaxGgufTensors) {
    return fail("tensor_count " + std::to_string(h.tensor_count) + " exceeds the limit of " +
                std::to_string(kMaxGgufTensors));
  }
  if (Status s = check_count(*cur, "metadata_kv_count", h.kv_count, kMinKvBytes); !s.ok()) {
    return s;
  }
  if (Status s = check_count(*cur, "tensor_count", h.tensor_count, kMinTensorInfoBytes); !s.ok()) {
    return s;
  }
  return h;
}

// `general.alignment`: a uint32 power of two.
Result<std::uint64_t> read_alignment(std::uint32_t type, const json& v) {
  if (type != static_cast<std::uint32_t>(GgufValueType::kUint32)) {
    return fail("general.alignment must be a uint32 (type " + std::to_string(type) + " given)");
  }
  const auto a = v.get<std::uint64_t>();
  if (a == 0 || (a & (a - 1)) != 0) {
    return fail("general.alignment " + std::to_string(a) + " is not a power of two");
  }
  return a;
}

// Reads the key-value pairs, validating all and building into `meta` the
// ones `filter` wants; returns the data alignment.
Result<std::uint64_t> read_metadata(ByteCursor* cur, GgufValueReader* vr, std::uint64_t count,
                                    const MetadataFilter& filter, json* meta) {
  std::uint64_t alignment = kGgufDefaultAlignment;
  std::unordered_set<std::string> keys;  // bounded by the header's bytes, as the keys are
  for (std::uint64_t i = 0; i < count; ++i) {
    auto key = vr->read_string(kMaxGgufKeyBytes);
    if (!key.ok()) {
      return fail("metadata key #" + std::to_string(i) + ": " + key.status().message());
    }
    if (key->empty()) return fail("metadata key #" + std::to_string(i) + " is empty");
    std::uint32_t type = 0;
    if (!cur->read(&type)) return truncated(*cur, "a metadata value type");
    const bool build = filter.wants(*key) || *key == "general.alignment";
    auto value = vr->read_value(type, build);
    if (!value.ok()) return fail("metadata " + in_quotes(*key) + ": " + value.status().message());
    if (!keys.insert(*key).second) return fail("duplicate metadata key " + in_quotes(*key));
    if (*key == "general.alignment") {
      auto a = read_alignment(type, *value);
      if (!a.ok()) return a.status();
      alignment = *a;
    }
    if (filter.wants(*key)) (*meta)[std::move(*key)] = std::move(*value);
  }
  return alignment;
}

// Fills t->shape from `ne` and t->size from the type's block layout.
Status fill_shape(const GgmlType& type, std::span<const std::uint64_t> ne, TensorInfo* t) {
  std::uint64_t elements = 1;
  for (std::uint64_t n : ne) {
    if (n > static_cast<std::uint64_t>(INT64_MAX)) {
      return fail("tensor " + in_quotes(t->name) + ": dimension " + std::to_string(n) +
                  " exceeds the int64 range");
    }
    if (!checked_mul(elements, n, &elements) || elements > static_cast<std::uint64_t>(INT64_MAX)) {
      return fail("tensor " + in_quotes(t->name) + ": element count overflows 63 bits");
    }
    t->shape.push_back(static_cast<std::int64_t>(n));
  }
  const std::uint64_t ne0 = ne.empty() ? 1 : ne[0];
  if (ne0 % type.block_size != 0) {
    return fail("tensor " + in_quotes(t->name) + ": ne[0] = " + std::to_string(ne0) +
                " is not a multiple of the block size " + std::to_string(type.block_size) + " of " +
                std::string(type.name));
  }
  // rows * ne0 == elements <= INT64_MAX, so only the byte count can overflow.
  const std::uint64_t rows = ne0 == 0 ? 0 : elements / ne0;
  std::uint64_t row_bytes = 0;
  if (!checked_mul(ne0 / type.block_size, type.type_size, &row_bytes) ||
      !checked_mul(row_bytes, rows, &t->size)) {
    return fail("tensor " + in_quotes(t->name) + ": byte size overflows 64 bits");
  }
  t->dtype = std::string(type.name);
  return Status::ok_status();
}

// One tensor info; t->offset stays relative to the data section.
Result<TensorInfo> read_tensor_info(ByteCursor* cur, GgufValueReader* vr, std::uint64_t i,
                                    std::uint64_t alignment) {
  TensorInfo t;
  auto name = vr->read_string(kMaxGgufTensorNameBytes);
  if (!name.ok()) return fail("tensor #" + std::to_string(i) + " name: " + name.status().message());
  t.name = std::move(*name);
  std::uint32_t n_dims = 0;
  if (!cur->read(&n_dims)) return truncated(*cur, "n_dimensions");
  if (n_dims > kMaxGgufDims) {
    return fail("tensor " + in_quotes(t.name) + " has " + std::to_string(n_dims) +
                " dimensions (at most " + std::to_string(kMaxGgufDims) + ")");
  }
  std::array<std::uint64_t, kMaxGgufDims> ne{};
  for (std::uint32_t d = 0; d < n_dims; ++d) {
    if (!cur->read(&ne[d])) return truncated(*cur, "tensor dimensions");
  }
  std::uint32_t type_id = 0;
  if (!cur->read(&type_id)) return truncated(*cur, "a ggml type");
  const GgmlType* type = find_ggml_type(type_id);
  if (type == nullptr) {
    return fail("tensor " + in_quotes(t.name) + ": unknown ggml type " + std::to_string(type_id));
  }
  if (Status s = fill_shape(*type, {ne.data(), n_dims}, &t); !s.ok()) return s;
  if (!cur->read(&t.offset)) return truncated(*cur, "a tensor offset");
  if (t.offset % alignment != 0) {
    return fail("tensor " + in_quotes(t.name) + ": offset " + std::to_string(t.offset) +
                " is not a multiple of the alignment " + std::to_string(alignment));
  }
  return t;
}

Result<TensorIndex> parse_gguf_unguarded(std::span<const std::byte> file,
                                         const MetadataFilter& filter) {
  ByteCursor cur(file);
  GgufValueReader vr(&cur);
  auto header = read_header(&cur);
  if (!header.ok()) return header.status();
  TensorIndex index;
  index.format = layout::Format::kGguf;
  auto alignment = read_metadata(&cur, &vr, header->kv_count, filter, &index.metadata);
  if (!alignment.ok()) return alignment.status();
  if (Status s = check_count(cur, "tensor_count", header->tensor_count, kMinTensorInfoBytes);
      !s.ok()) {
    return s;
  }
  index.tensors.reserve(header->tensor_count);
  std::unordered_set<std::string> names;
  for (std::uint64_t i = 0; i < header->tensor_count; ++i) {
    auto t = read_tensor_info(&cur, &vr, i, *alignment);
    if (!t.ok()) return t.status();
    if (!names.insert(t->name).second) return fail("duplicate tensor name " + in_quotes(t->name));
    index.tensors.push_back(std::move(*t));
  }
  std::uint64_t data_start = 0;
  if (!checked_align_up(cur.pos(), *alignment, &data_start) ||
      (!index.tensors.empty() && data_start > file.size())) {
    return fail("the data section (aligned to " + std::to_string(*alignment) +
                ") starts past the end of the file (" + std::to_string(file.size()) + " bytes)");
  }
  for (TensorInfo& t : index.tensors) {
    if (!checked_add(t.offset, data_start, &t.offset)) {
      return fail("tensor " + in_quotes(t.name) + ": offset overflows 64 bits");
    }
  }
  if (Status s = place_tensors("gguf", &index.tensors, data_start, file.size()); !s.ok()) return s;
  return index;
}

}  // namespace

Result<TensorIndex> parse_gguf(std::span<const std::byte> file, const MetadataFilter& metadata) {
  try {
    return parse_gguf_unguarded(file, metadata);
  } catch (const std::exception& e) {  // std::bad_alloc: the reader itself throws nothing
    return fail(std::string("cannot read the index: ") + printable(e.what(), 200));
  }
}

}  // namespace modelpool::format
