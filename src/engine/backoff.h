// Retry delays: exponential backoff with jitter, so many jobs failing at once do not all come
// back at the same instant.
#pragma once

#include <cstdint>
#include <random>

namespace sluice {

// Delay before try number `attempt + 1`, given `attempt` tries so far (>= 1): base * 2^(attempt-1)
// capped at `max`, then scaled by a random factor in [0.5, 1.0]. Microseconds.
inline int64_t BackoffMicros(int attempt, double base_s, double max_s, std::mt19937_64& rng) {
  double d = base_s;
  for (int i = 1; i < attempt && d < max_s; ++i) d *= 2;
  if (d > max_s) d = max_s;
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return static_cast<int64_t>(d * jitter(rng) * 1e6);
}

}  // namespace sluice
