// SerialLane: order, the bound on waiting calls, and every call run before it is gone.
#include "core/serial_lane.h"

#include <gtest/gtest.h>

#include <future>
#include <vector>

namespace sluice {
namespace {

TEST(SerialLaneTest, RunsInOrderAndRefusesBeyondTheBoundWithoutTakingTheCall) {
  std::vector<int> ran;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> first_started;
  {
    SerialLane lane(2);
    std::function<void()> blocker = [&] {
      first_started.set_value();
      released.wait();
      ran.push_back(0);
    };
    ASSERT_TRUE(lane.Post(blocker));
    first_started.get_future().wait();  // running: it takes no waiting place
    for (int i = 1; i <= 2; ++i) {
      std::function<void()> call = [&ran, i] { ran.push_back(i); };
      ASSERT_TRUE(lane.Post(call));
    }
    bool refused_ran = false;
    std::function<void()> refused = [&] { refused_ran = true; };
    EXPECT_FALSE(lane.Post(refused));
    ASSERT_TRUE(refused);  // still the caller's, to answer otherwise
    release.set_value();
    // Leaving the scope stops the lane: the waiting calls run first.
    EXPECT_FALSE(refused_ran);
  }
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2}));
}

TEST(SerialLaneTest, ARoomFreedByARunCallIsTakenAgain) {
  SerialLane lane(1);
  for (int round = 0; round < 100; ++round) {
    std::promise<void> done;
    std::function<void()> call = [&] { done.set_value(); };
    ASSERT_TRUE(lane.Post(call));
    done.get_future().wait();
  }
}

}  // namespace
}  // namespace sluice
