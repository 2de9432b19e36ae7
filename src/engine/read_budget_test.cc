// ReadBudget: bytes taken at once stay within the budget, a large file runs alone, first come
// first served, and a stop ends a wait.
#include "engine/read_budget.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace sluice {
namespace {

TEST(ReadBudgetTest, TakesWhatFitsAndALargerOneTakesTheWholeBudget) {
  ReadBudget budget(100);
  std::atomic<bool> stop{false};
  bool taken = false;
  auto a = budget.Take(60, stop, &taken);
  ASSERT_TRUE(taken);
  auto b = budget.Take(40, stop, &taken);
  ASSERT_TRUE(taken);
  EXPECT_EQ(budget.Held(), 100u);
  a.Release();
  b.Release();
  auto huge = budget.Take(1'000'000, stop, &taken);  // alone, not refused
  ASSERT_TRUE(taken);
  EXPECT_EQ(budget.Held(), 100u);
  huge = ReadBudget::Grant();
  EXPECT_EQ(budget.Held(), 0u);
}

TEST(ReadBudgetTest, AWaiterIsServedBeforeLaterSmallerOnes) {
  ReadBudget budget(100);
  std::atomic<bool> stop{false};
  bool taken = false;
  auto first = budget.Take(50, stop, &taken);
  std::vector<int> order;
  std::mutex mu;
  // A large file waits for the whole budget; small ones that come after it wait behind it,
  // though 50 bytes are free for them.
  std::thread large([&] {
    bool t = false;
    auto g = budget.Take(100, stop, &t);
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(100);
  });
  while (budget.Waiters() != 1u) std::this_thread::yield();  // the large one is in line
  std::thread small([&] {
    bool t = false;
    auto g = budget.Take(10, stop, &t);
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(10);
  });
  while (budget.Waiters() != 2u) std::this_thread::yield();  // the small one behind it
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(order.empty());  // though 50 bytes are free for the small one
  }
  first.Release();
  large.join();
  small.join();
  EXPECT_EQ(order, (std::vector<int>{100, 10}));
  EXPECT_EQ(budget.Held(), 0u);
}

TEST(ReadBudgetTest, AStopEndsAWaitAndTheNextInLineGoesOn) {
  ReadBudget budget(100);
  std::atomic<bool> stop_first{false}, never{false};
  bool taken = false;
  auto held = budget.Take(90, never, &taken);
  bool first_taken = true, second_taken = false;
  std::thread first([&] { auto g = budget.Take(100, stop_first, &first_taken); });
  while (budget.Waiters() != 1u) std::this_thread::yield();
  std::thread second([&] { auto g = budget.Take(10, never, &second_taken); });
  while (budget.Waiters() != 2u) std::this_thread::yield();
  stop_first = true;  // the first in line gives up: the second fits in what is free
  first.join();
  second.join();
  EXPECT_FALSE(first_taken);
  EXPECT_TRUE(second_taken);
  EXPECT_EQ(budget.Held(), 90u);
}

}  // namespace
}  // namespace sluice
