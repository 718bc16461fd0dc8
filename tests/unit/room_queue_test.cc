// File: tests/unit/room_queue_test.cc
//
// The queue of acquires waiting for room, on a clock the test moves: order,
// head-of-line waiting, deadlines, clients that went, errors, shutdown and
// re-entrant serving.
#include "broker/server/room_queue.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace modelpool::broker {
namespace {

using namespace std::chrono_literals;

struct Req {
  std::string model;
  bool gone = false;
};

// A pool with `room` models' worth of room; a model in `refused` fails with
// not_found instead. Records what happened to each request.
struct Harness {
  int room = 0;
  std::map<std::string, ErrorCode> refused;
  std::vector<std::string> served, failed, expired;
  std::vector<std::chrono::milliseconds> waits;
  RoomQueue<Req>::Clock::time_point now{1h};
  std::function<void()> on_serve;  // runs inside the serve hook
  RoomQueue<Req> queue{hooks()};

  RoomQueue<Req>::Hooks hooks() {
    RoomQueue<Req>::Hooks h;
    h.serve = [this](Req& r) -> Status {
      if (on_serve) on_serve();
      if (auto it = refused.find(r.model); it != refused.end()) return error(it->second, r.model);
      if (room == 0) return error(ErrorCode::kPoolFull, "no room");
      --room;
      served.push_back(r.model);
      return {};
    };
    h.fail = [this](Req& r, const Status&) { failed.push_back(r.model); };
    h.expired = [this](Req& r, std::chrono::milliseconds w) {
      expired.push_back(r.model);
      waits.push_back(w);
    };
    h.gone = [](const Req& r) { return r.gone; };
    h.now = [this] { return now; };
    return h;
  }
};

TEST(RoomQueue, ServesInArrivalOrderAsRoomAppears) {
  Harness h;
  h.queue.push({"a"}, 1000ms);
  h.queue.push({"b"}, 1000ms);
  h.queue.push({"c"}, 1000ms);
  h.queue.serve();
  EXPECT_TRUE(h.served.empty());
  EXPECT_EQ(h.queue.size(), 3u);
  h.room = 2;
  h.queue.serve();
  EXPECT_EQ(h.served, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(h.queue.size(), 1u);
  h.room = 1;
  h.queue.serve();
  EXPECT_EQ(h.served, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(h.queue.empty());
  EXPECT_FALSE(h.queue.next_deadline().has_value());
}

TEST(RoomQueue, AHeadWithoutRoomHoldsBackEveryoneBehindIt) {
  Harness h;
  int tries = 0;
  h.on_serve = [&] { ++tries; };
  h.queue.push({"large"}, 1000ms);
  h.queue.push({"small"}, 1000ms);
  h.queue.serve();
  EXPECT_EQ(tries, 1) << "the head is tried; nobody overtakes it";
  EXPECT_TRUE(h.served.empty());
}

TEST(RoomQueue, AnErrorOtherThanNoRoomAnswersThatRequestAndServingGoesOn) {
  Harness h;
  h.room = 1;
  h.refused["gone.bin"] = ErrorCode::kNotFound;
  h.queue.push({"gone.bin"}, 1000ms);
  h.queue.push({"b"}, 1000ms);
  h.queue.serve();
  EXPECT_EQ(h.failed, (std::vector<std::string>{"gone.bin"}));
  EXPECT_EQ(h.served, (std::vector<std::string>{"b"}));
  EXPECT_TRUE(h.queue.empty());
}

TEST(RoomQueue, RequestsOfClientsThatWentLeaveUnanswered) {
  Harness h;
  h.room = 1;
  h.queue.push({"a", true}, 1000ms);
  h.queue.push({"b"}, 1000ms);
  h.queue.serve();
  EXPECT_EQ(h.served, (std::vector<std::string>{"b"}));
  EXPECT_TRUE(h.failed.empty());
  EXPECT_TRUE(h.expired.empty());
}

TEST(RoomQueue, DeadlinesExpireOnlyTheRequestsPastThem) {
  Harness h;
  h.queue.push({"short"}, 100ms);
  h.queue.push({"long"}, 5000ms);
  h.queue.push({"mid"}, 1000ms);
  ASSERT_TRUE(h.queue.next_deadline().has_value());
  EXPECT_EQ(*h.queue.next_deadline(), h.now + 100ms);
  h.now += 99ms;
  h.queue.expire();
  EXPECT_TRUE(h.expired.empty());
  h.now += 1ms;
  h.queue.expire();
  EXPECT_EQ(h.expired, (std::vector<std::string>{"short"}));
  EXPECT_EQ(h.waits, (std::vector<std::chrono::milliseconds>{100ms}));
  EXPECT_EQ(*h.queue.next_deadline(), h.now - 100ms + 1000ms);
  h.now += 10s;
  h.queue.expire();
  EXPECT_EQ(h.expired, (std::vector<std::string>{"short", "long", "mid"}));
  EXPECT_TRUE(h.queue.empty());
  EXPECT_FALSE(h.queue.next_deadline().has_value());
}

TEST(RoomQueue, AServedRequestNoLongerHasADeadline) {
  Harness h;
  h.queue.push({"a"}, 100ms);
  h.queue.push({"b"}, 200ms);
  h.room = 1;
  h.queue.serve();
  ASSERT_TRUE(h.queue.next_deadline().has_value());
  EXPECT_EQ(*h.queue.next_deadline(), h.now + 200ms);
  h.now += 150ms;
  h.queue.expire();
  EXPECT_TRUE(h.expired.empty()) << "a, served, does not expire";
}

TEST(RoomQueue, DrainTakesEveryRequestInOrder) {
  Harness h;
  h.queue.push({"a"}, 100ms);
  h.queue.push({"b"}, 100ms);
  const std::vector<Req> all = h.queue.drain();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].model, "a");
  EXPECT_EQ(all[1].model, "b");
  EXPECT_TRUE(h.queue.empty());
  EXPECT_FALSE(h.queue.next_deadline().has_value());
  h.now += 1s;
  h.queue.expire();
  EXPECT_TRUE(h.expired.empty());
}

TEST(RoomQueue, ServingThatLeadsBackToServeDoesNotRecurse) {
  Harness h;
  h.room = 3;
  int depth = 0, deepest = 0;
  h.on_serve = [&] {
    ++depth;
    deepest = std::max(deepest, depth);
    h.queue.serve();  // e.g. a grant whose side effects serve waiters again
    --depth;
  };
  h.queue.push({"a"}, 100ms);
  h.queue.push({"b"}, 100ms);
  h.queue.push({"c"}, 100ms);
  h.queue.serve();
  EXPECT_EQ(deepest, 1);
  EXPECT_EQ(h.served, (std::vector<std::string>{"a", "b", "c"}));
  h.queue.push({"d"}, 100ms);  // and the queue still works afterwards
  h.room = 1;
  h.queue.serve();
  EXPECT_EQ(h.served.back(), "d");
}

}  // namespace
}  // namespace modelpool::broker
