// File: shm/format/extents.cc
//
// Bounds and overlap check over the tensors sorted by offset: one pass that
// remembers the furthest end seen so far.
#include "shm/format/extents.hpp"

#include <algorithm>
#include <string>

#include "shm/format/reader_util.hpp"

namespace modelpool::format {
namespace {

Status fail(std::string_view format, const std::string& msg) {
  return error(ErrorCode::kLoadFailed, std::string(format) + ": " + msg);
}

std::string range(std::uint64_t a, std::uint64_t b) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

}  // namespace

Status place_tensors(std::string_view format, std::vector<TensorInfo>* tensors, std::uint64_t begin,
                     std::uint64_t end) {
  std::stable_sort(tensors->begin(), tensors->end(),
                   [](const TensorInfo& a, const TensorInfo& b) { return a.offset < b.offset; });
  const TensorInfo* last = nullptr;  // the non-empty tensor reaching furthest
  std::uint64_t last_end = begin;
  for (const TensorInfo& t : *tensors) {
    std::uint64_t t_end = 0;
    if (t.offset < begin || !checked_add(t.offset, t.size, &t_end) || t_end > end) {
      return fail(format, "tensor " + in_quotes(t.name) + " (offset " + std::to_string(t.offset) +
                              ", size " + std::to_string(t.size) +
                              ") lies outside the data section " + range(begin, end));
    }
    if (t.size == 0) continue;
    if (last != nullptr && t.offset < last_end) {
      return fail(format, "tensors " + in_quotes(last->name) + " " + range(last->offset, last_end) +
                              " and " + in_quotes(t.name) + " " + range(t.offset, t_end) +
                              " overlap");
    }
    last = &t;
    last_end = t_end;
  }
  return Status::ok_status();
}

}  // namespace modelpool::format
