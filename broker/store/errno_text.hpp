// File: broker/store/errno_text.hpp
//
// errno_text(err): strerror that is safe on the loader threads (strerror may
// share a static buffer; this uses the GNU strerror_r). Internal to store.
#ifndef MODELPOOL_BROKER_STORE_ERRNO_TEXT_HPP_
#define MODELPOOL_BROKER_STORE_ERRNO_TEXT_HPP_

#include <cstring>
#include <string>

namespace modelpool::broker {

inline std::string errno_text(int err) {
  char buf[128];
  return ::strerror_r(err, buf, sizeof buf);  // GNU: returns the message
}

}  // namespace modelpool::broker

#endif  // MODELPOOL_BROKER_STORE_ERRNO_TEXT_HPP_
