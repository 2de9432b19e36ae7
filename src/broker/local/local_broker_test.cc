// LocalBroker: order of hand-out and delayed tickets, with a manual clock (no sleeping).
#include "broker/local/local_broker.h"

#include <gtest/gtest.h>

#include <thread>

namespace sluice {
namespace {

using std::chrono::milliseconds;

TEST(LocalBrokerTest, HigherPriorityFirstThenOldestFirst) {
  ManualClock clock;
  LocalBroker broker(&clock);
  broker.Push({1, 0, 300, 0});
  broker.Push({2, 0, 100, 0});
  broker.Push({3, 5, 900, 0});
  broker.Push({4, 0, 200, 0});
  std::vector<int64_t> order;
  while (auto t = broker.Pop(milliseconds(0))) order.push_back(t->job_id);
  EXPECT_EQ(order, (std::vector<int64_t>{3, 2, 4, 1}));
}

TEST(LocalBrokerTest, ADelayedTicketIsNotHandedOutBeforeItsTime) {
  ManualClock clock;
  LocalBroker broker(&clock);
  broker.Push({7, 0, 0, clock.NowMicros() + 5'000'000});
  EXPECT_FALSE(broker.Pop(milliseconds(0)).has_value());
  EXPECT_EQ(broker.DelayedCount(), 1u);
  clock.Advance(4'999'999);
  EXPECT_FALSE(broker.Pop(milliseconds(0)).has_value());
  clock.Advance(1);
  auto t = broker.Pop(milliseconds(0));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->job_id, 7);
  EXPECT_EQ(broker.DelayedCount(), 0u);
}

TEST(LocalBrokerTest, CloseWakesWaitersAndRefusesFurtherPops) {
  ManualClock clock;
  LocalBroker broker(&clock);
  std::thread waiter([&] { EXPECT_FALSE(broker.Pop(milliseconds(60'000)).has_value()); });
  broker.Close();
  waiter.join();
  broker.Push({1, 0, 0, 0});
  EXPECT_FALSE(broker.Pop(milliseconds(0)).has_value());
}

}  // namespace
}  // namespace sluice
