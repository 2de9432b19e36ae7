// Retry delays grow, stop at the cap, and are jittered.
#include "engine/backoff.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(BackoffTest, DoublesPerAttemptUpToTheCapWithJitterBetweenHalfAndFull) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    int64_t d1 = BackoffMicros(1, 2.0, 60, rng);
    EXPECT_GE(d1, 1'000'000);
    EXPECT_LE(d1, 2'000'000);
    int64_t d3 = BackoffMicros(3, 2.0, 60, rng);
    EXPECT_GE(d3, 4'000'000);
    EXPECT_LE(d3, 8'000'000);
    int64_t d20 = BackoffMicros(20, 2.0, 60, rng);
    EXPECT_GE(d20, 30'000'000);
    EXPECT_LE(d20, 60'000'000);
  }
}

}  // namespace
}  // namespace sluice
