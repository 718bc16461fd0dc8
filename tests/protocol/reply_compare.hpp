// File: tests/protocol/reply_compare.hpp
//
// Every field of two acquire replies, compared one by one (the struct has
// no operator==: the wire codec compares fields, not layouts).
#ifndef MODELPOOL_TESTS_PROTOCOL_REPLY_COMPARE_HPP_
#define MODELPOOL_TESTS_PROTOCOL_REPLY_COMPARE_HPP_

#include <gtest/gtest.h>

#include "shm/protocol/messages.hpp"

namespace modelpool::proto {

inline void expect_same_reply(const AcquireReply& got, const AcquireReply& want) {
  EXPECT_EQ(got.handle, want.handle);
  EXPECT_EQ(got.model, want.model);
  EXPECT_EQ(got.offset, want.offset);
  EXPECT_EQ(got.size, want.size);
  EXPECT_EQ(got.generation, want.generation);
  EXPECT_EQ(got.checksum, want.checksum);
  EXPECT_EQ(got.format, want.format);
  EXPECT_EQ(got.cached, want.cached);
  EXPECT_EQ(got.files, want.files);
  EXPECT_EQ(got.commit, want.commit);
}

}  // namespace modelpool::proto

#endif  // MODELPOOL_TESTS_PROTOCOL_REPLY_COMPARE_HPP_
