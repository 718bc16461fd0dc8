// File: broker/logging.hpp
//
// The broker's log: where it goes (stderr, or --log-file) and what a line
// looks like (--log-format).
//   text     "TIMESTAMP LEVEL MESSAGE", local time with milliseconds: the
//            format the broker has always written.
//   json     one object per line: {"ts","level","msg","pid","pool"}, `ts` in
//            UTC RFC 3339 with milliseconds and `Z`, `msg` the text format's
//            MESSAGE as a JSON string (invalid UTF-8 replaced by U+FFFD).
//   journal  the text line behind a syslog priority "<N>" (7 debug and
//            trace, 6 info, 4 warning, 3 error, 2 critical).
// When the log goes to stderr and stderr is the stream journald connected
// ($JOURNAL_STREAM names its device and inode, systemd.exec(5)), text and
// json lines get the "<N>" prefix too: journald takes it as the line's
// priority and strips it, so `journalctl -p warning` works and the stored
// message is the line as it would be without journald.
#ifndef MODELPOOL_BROKER_LOGGING_HPP_
#define MODELPOOL_BROKER_LOGGING_HPP_

#include "broker/config.hpp"

namespace modelpool::broker {

// Installs the default spdlog logger described above. Call once, before
// any other thread logs.
void setup_logging(const Config& config);

// True when fd 2 is the journal stream named by $JOURNAL_STREAM
// ("DEVICE:INODE", both decimal) — not merely inherited from a parent
// whose stderr it was.
bool stderr_is_journal();

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_LOGGING_HPP_
