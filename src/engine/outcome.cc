// SettleTry: a try's status and output into the job's next state.
#include "engine/outcome.h"

#include "core/spdlog.h"
#include "core/text.h"
#include "engine/backoff.h"

namespace sluice {

void SettleTry(Job* job, const Status& st, HandlerOutput* out, const RetryPolicy& policy,
               std::mt19937_64* rng, std::mutex* rng_mu, int64_t now) {
  job->run_at = 0;
  if (st.ok()) {
    job->state = JobState::kSucceeded;
    job->finished_at = now;
    job->error = {};
    job->result = std::move(out->summary);
    return;
  }
  job->error.code = out->error_code.empty() ? std::string(CodeName(st.code())) : out->error_code;
  job->error.detail = std::move(out->error_detail);
  job->error.message = Shortened(st.message());
  if (st.IsTransient() && job->attempts < job->max_attempts) {
    job->state = JobState::kRetrying;
    int64_t delay;
    {
      std::lock_guard<std::mutex> lock(*rng_mu);
      delay = BackoffMicros(job->attempts, policy.delay_s, policy.max_delay_s, *rng);
    }
    job->run_at = now + delay;
    spdlog::info("job {} ({}): attempt {}/{} failed, retrying in {:.1f}s: {}", job->id,
                 job->name.empty() ? "sent over HTTP" : job->name, job->attempts, job->max_attempts,
                 delay / 1e6, job->error.message);
    return;
  }
  job->state = JobState::kFailed;
  job->finished_at = now;
  if (st.IsTransient()) {
    job->error.message = "gave up after " + std::to_string(job->attempts) +
                         " attempts; last error: " + job->error.message;
  }
}

}  // namespace sluice
