// File: broker/server/log_text.hpp
//
// What a client sent, made safe for one log line: every string a client
// chose (an op, a model name, an id, an error message quoting its bytes)
// passes through log_text() before it reaches spdlog, so a client cannot
// forge log lines or flood one line with a 64 KiB field. Pure, thread-safe.
#ifndef MODELPOOL_BROKER_SERVER_LOG_TEXT_HPP_
#define MODELPOOL_BROKER_SERVER_LOG_TEXT_HPP_

#include <cstddef>
#include <string>
#include <string_view>

namespace modelpool::broker {

inline constexpr std::size_t kMaxLogText = 200;  // bytes of the input kept

// `text` with control bytes, DEL and backslash escaped (\n, \r, \t, \\,
// \xNN) and cut after kMaxLogText input bytes with a marker saying how
// many more there were ("...[+N bytes]").
std::string log_text(std::string_view text);

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_SERVER_LOG_TEXT_HPP_
