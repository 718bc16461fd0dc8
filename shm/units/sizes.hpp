// File: shm/units/sizes.hpp
//
// Sizes as people write and read them, for options, logs and modelpoolctl.
#ifndef MODELPOOL_SHM_UNITS_SIZES_HPP_
#define MODELPOOL_SHM_UNITS_SIZES_HPP_

#include <cstdint>
#include <string>
#include <string_view>

#include "shm/status.hpp"

namespace modelpool::units {

// "512MiB", "4G", "1.5GiB", "1073741824" -> bytes (K/M/G/T are binary units).
Result<std::uint64_t> parse_size(std::string_view text);
// 1536 MiB -> "1.5 GiB".
std::string format_bytes(std::uint64_t bytes);

}  // namespace modelpool::units

#endif  // MODELPOOL_SHM_UNITS_SIZES_HPP_
