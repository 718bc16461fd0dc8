// File: clientlib/python/src/array_spec.cc
#include "array_spec.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace modelpool::python {
namespace {

struct DtypeRow {
  std::string_view dtype;    // as safetensors and GGUF spell it
  std::string_view typestr;  // numpy, little-endian like both formats
};

// safetensors' Dtype enum and GGUF's non-quantised ggml types share these
// spellings. Hosts are little-endian (x86-64, aarch64), as are the files.
constexpr std::array<DtypeRow, 18> kDtypes = {{
    {"BOOL", "|b1"},
    {"U8", "|u1"},
    {"I8", "|i1"},
    {"F8_E5M2", "|u1"},
    {"F8_E4M3", "|u1"},
    {"F8_E8M0", "|u1"},
    {"I16", "<i2"},
    {"U16", "<u2"},
    {"F16", "<f2"},
    {"BF16", "<u2"},
    {"I32", "<i4"},
    {"U32", "<u4"},
    {"F32", "<f4"},
    {"F64", "<f8"},
    {"I64", "<i8"},
    {"U64", "<u8"},
    {"C64", "<c8"},
    {"C128", "<c16"},
}};

std::uint64_t itemsize(std::string_view typestr) {
  std::uint64_t n = 0;
  for (char c : typestr.substr(2)) n = n * 10 + static_cast<std::uint64_t>(c - '0');
  return n;
}

// Product of `dims`, or nullopt-like max() on a negative dimension or overflow.
std::uint64_t elements(std::span<const std::int64_t> dims) {
  constexpr std::uint64_t kBad = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t n = 1;
  for (std::int64_t d : dims) {
    if (d < 0) return kBad;
    const auto u = static_cast<std::uint64_t>(d);
    if (u != 0 && n > kBad / u) return kBad;
    n *= u;
  }
  return n;
}

ArraySpec flat_bytes(std::uint64_t nbytes) { return {"|u1", {static_cast<std::int64_t>(nbytes)}}; }

}  // namespace

std::string_view numpy_typestr(std::string_view dtype) {
  for (const DtypeRow& r : kDtypes) {
    if (r.dtype == dtype) return r.typestr;
  }
  return {};
}

ArraySpec array_spec(Format format, std::string_view dtype, std::span<const std::int64_t> shape,
                     std::uint64_t nbytes) {
  std::vector<std::int64_t> dims(shape.begin(), shape.end());
  if (format == Format::gguf) std::reverse(dims.begin(), dims.end());

  if (const std::string_view t = numpy_typestr(dtype); !t.empty()) {
    const std::uint64_t n = elements(dims);
    const std::uint64_t size = itemsize(t);
    if (n <= nbytes && n * size == nbytes) return {std::string(t), std::move(dims)};
    return flat_bytes(nbytes);
  }
  // Quantised: rows of bytes. The outer dimensions count the rows.
  if (dims.empty()) return flat_bytes(nbytes);
  const std::uint64_t rows = elements(std::span(dims).first(dims.size() - 1));
  if (rows == 0 || rows > nbytes || nbytes % rows != 0) return flat_bytes(nbytes);
  dims.back() = static_cast<std::int64_t>(nbytes / rows);
  return {"|u1", std::move(dims)};
}

}  // namespace modelpool::python
