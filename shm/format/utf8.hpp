// File: shm/format/utf8.hpp
//
// Strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates,
// nothing above U+10FFFF. GGUF strings go through it before they become JSON
// (nlohmann-json refuses to serialise invalid UTF-8, and the metadata is sent
// to clients). Pure function; thread-safe.
#ifndef MODELPOOL_SHM_FORMAT_UTF8_HPP_
#define MODELPOOL_SHM_FORMAT_UTF8_HPP_

#include <string_view>

namespace modelpool::format {

bool is_valid_utf8(std::string_view s);

}  // namespace modelpool::format

#endif  // MODELPOOL_SHM_FORMAT_UTF8_HPP_
