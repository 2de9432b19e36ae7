// LocalBroker: order of hand-out and delayed tickets, with a manual clock (no sleeping).
#include "broker/local/local_broker.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
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

// Regression: a run_at in year 9999 (or INT64_MAX, stored before input was checked) overflowed
// the steady clock's nanoseconds into a deadline in the past, and Pop spun a core.
TEST(LocalBrokerTest, ATicketDueCenturiesAwaySleepsInsteadOfSpinning) {
  LocalBroker broker(Clock::Real());
  broker.Push({1, 0, 0, INT64_MAX});
  broker.Push({2, 0, 0, 253402300799000000});  // 9999-12-31T23:59:59Z
  struct rusage before, after;
  getrusage(RUSAGE_THREAD, &before);
  EXPECT_FALSE(broker.Pop(milliseconds(300)).has_value());
  getrusage(RUSAGE_THREAD, &after);
  auto cpu_us = [](const struct rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1'000'000 + r.ru_utime.tv_usec +
           r.ru_stime.tv_usec;
  };
  // Spinning for 300 ms burns about 300 ms of CPU; sleeping, almost none.
  EXPECT_LT(cpu_us(after) - cpu_us(before), 50'000);
  EXPECT_EQ(broker.DelayedCount(), 2u);
}

// Tickets scheduled after the soonest one wake no waiter (each wake-up is a context switch
// per worker: before, each such submission woke every worker); one due first still does.
TEST(LocalBrokerTest, OnlyATicketDueFirstWakesTheWaiters) {
  LocalBroker broker(Clock::Real());
  int64_t hour = Clock::Real()->NowMicros() + 3'600'000'000;
  broker.Push({1, 0, 0, hour});
  std::atomic<long> switches{-1};
  std::thread waiter([&] {
    struct rusage before, after;
    getrusage(RUSAGE_THREAD, &before);
    EXPECT_FALSE(broker.Pop(milliseconds(1500)).has_value());
    getrusage(RUSAGE_THREAD, &after);
    switches = after.ru_nvcsw - before.ru_nvcsw;
  });
  std::this_thread::sleep_for(milliseconds(50));  // asleep in Pop
  for (int i = 0; i < 300; ++i) {                 // spaced, as submissions come: each could wake it
    broker.Push({2 + i, 0, 0, hour + 1 + i});
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  waiter.join();
  EXPECT_LT(switches.load(), 30) << switches.load();  // about 300 when every push woke it

  // A ticket due before all the others: the sleeping waiter takes it at its time, not at the
  // end of its wait.
  std::optional<Ticket> got;
  auto t0 = std::chrono::steady_clock::now();
  std::thread taker([&] { got = broker.Pop(milliseconds(10'000)); });
  std::this_thread::sleep_for(milliseconds(50));
  broker.Push({9999, 0, 0, Clock::Real()->NowMicros() + 100'000});
  taker.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->job_id, 9999);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
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
