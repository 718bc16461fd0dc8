// File: clientlib/python/src/array_spec.hpp
//
// How one tensor of a model file is presented as a numpy array: the numpy
// dtype that matches the format's dtype, and the array's shape in numpy
// order. Pure logic with no Python, so the table is easy to check.
//
//   safetensors  shape as in the header; every dtype numpy has maps to it,
//                BF16 to uint16 (numpy has no bfloat16: the array holds the
//                raw bits), F8_* to uint8.
//   GGUF         ggml's ne[] reversed (ne[0] is the contiguous dimension, so
//                it comes last); F32/F16/F64/I8..I64 map to numpy, BF16 to
//                uint16; quantised types (Q4_K, IQ2_XS, ...) become uint8
//                arrays of their bytes, one row per ggml row when the rows
//                divide evenly, else one flat row.
// A spec never covers more bytes than the tensor has: when shape and dtype
// do not account for exactly `nbytes`, the spec falls back to flat uint8.
#ifndef MODELPOOL_CLIENTLIB_PYTHON_SRC_ARRAY_SPEC_HPP_
#define MODELPOOL_CLIENTLIB_PYTHON_SRC_ARRAY_SPEC_HPP_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelpool/client.hpp"

namespace modelpool::python {

struct ArraySpec {
  std::string typestr;              // numpy array-interface spelling: "<f4", "|u1", ...
  std::vector<std::int64_t> shape;  // numpy order, C-contiguous
};

// The numpy typestr of a format dtype numpy can hold element by element
// ("F32" -> "<f4", "BF16" -> "<u2"), or "" (quantised, unknown).
std::string_view numpy_typestr(std::string_view dtype);

ArraySpec array_spec(Format format, std::string_view dtype, std::span<const std::int64_t> shape,
                     std::uint64_t nbytes);

}  // namespace modelpool::python

#endif  // MODELPOOL_CLIENTLIB_PYTHON_SRC_ARRAY_SPEC_HPP_
