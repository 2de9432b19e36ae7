// What one try of a job comes to: the same rule for every worker (the engine's, a cluster's).
#pragma once

#include <cstdint>
#include <mutex>
#include <random>

#include "core/status.h"
#include "handlers/handler.h"
#include "store/job.h"

namespace sluice {

struct RetryPolicy {
  double delay_s = 2.0;  // first backoff; doubles per attempt, with jitter
  double max_delay_s = 300;
};

// Sets `job` from the handler's status and output at `now`: succeeded (its result), retrying
// (a transient error with attempts left: run_at after a backoff drawn from `rng`, under
// `rng_mu`), or failed (its error; "gave up after N attempts" for a transient one). Logs a
// retry.
void SettleTry(Job* job, const Status& st, HandlerOutput* out, const RetryPolicy& policy,
               std::mt19937_64* rng, std::mutex* rng_mu, int64_t now);

}  // namespace sluice
