// Engine workers: claim a job, run the handler, hand the outcome to the writer.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include "engine/backoff.h"
#include "engine/engine.h"

namespace sluice {

void Engine::WorkerLoop() {
  pthread_setname_np(pthread_self(), "sluice-worker");
  while (!stop_) {
    std::optional<Ticket> t = broker_->Pop(std::chrono::milliseconds(200));
    if (!t) {
      if (stop_) return;
      continue;
    }
    Job job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(t->job_id);
      // Only a waiting job runs: a ticket may be stale (the job was prioritised, so it has a
      // newer ticket, or cancelled, or is running already).
      if (it == jobs_.end() || (it->second.job.state != JobState::kQueued &&
                                it->second.job.state != JobState::kRetrying)) {
        continue;
      }
      Job& j = it->second.job;
      j.state = JobState::kRunning;
      j.attempts++;
      j.last_tried = clock_->NowMicros();
      job = j;
    }
    if (stop_) {
      // Stopping: leave it queued for the next start (the claim was never written).
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(job.id);
      if (it != jobs_.end()) {
        it->second.job.state = JobState::kQueued;
        it->second.job.attempts--;
      }
      continue;
    }
    RunJob(std::move(job));
  }
}

void Engine::RunJob(Job job) {
  // The claim (attempt counted) is written asynchronously; the writer commits it before the
  // result, or merges the two when both land in the same batch.
  Record(job);
  if (observer_ != nullptr) observer_->OnStarted(job);
  int64_t started = clock_->MonotonicMicros();
  if (job.attempts == 1 && job.file.mtime_ns > 0) {
    wait_seconds_.Observe(std::max(0.0, (job.last_tried * 1000.0 - job.file.mtime_ns) / 1e9));
  }

  HandlerContext ctx;
  std::string missing;
  if (job.spool.empty()) {
    ctx.payload = &job.payload;
  } else {
    ctx.path = spool_.PathOf(job.name);
    ctx.files["json"] = ctx.path;
    for (const std::string& suffix : options_.companions) {
      std::string companion = SpoolDir::CompanionOf(job.name, suffix);
      ctx.files[suffix.substr(suffix.rfind('.') + 1)] = spool_.PathOf(companion);
      if (missing.empty() && !env_->Stat(spool_.PathOf(companion)).ok()) missing = companion;
    }
  }
  ctx.max_file_bytes = options_.max_file_bytes;
  ctx.env = env_;
  ctx.clock = clock_;
  ctx.cancelled = &stop_;
  ctx.live_log = [this, &job](std::vector<std::string> lines) { RecordLog(job, std::move(lines)); };
  HandlerOutput out;
  Status st;
  if (!missing.empty()) {
    out.error_code = "missing_companion";
    st = Status::InvalidArgument(missing + " did not arrive within " +
                                 std::to_string(static_cast<int64_t>(options_.pair_timeout_s)) +
                                 " s of " + job.name);
  } else {
    st = handler_->Run(ctx, &out);
  }
  processing_seconds_.Observe((clock_->MonotonicMicros() - started) / 1e6);

  int64_t now = clock_->NowMicros();
  job.run_at = 0;
  if (st.ok()) {
    job.state = JobState::kSucceeded;
    job.finished_at = now;
    job.error = {};
    job.result = std::move(out.summary);
    counters_.objects += out.objects;
    counters_.bytes += out.bytes;
    return Record(job, std::move(out.rows), std::move(out.log));
  }
  job.error.code = out.error_code.empty() ? std::string(CodeName(st.code())) : out.error_code;
  job.error.detail = std::move(out.error_detail);
  job.error.message = st.message();
  if (st.IsTransient() && job.attempts < job.max_attempts) {
    job.state = JobState::kRetrying;
    int64_t delay;
    {
      std::lock_guard<std::mutex> lock(mu_);
      delay = BackoffMicros(job.attempts, options_.retry_delay_s, options_.retry_max_delay_s, rng_);
    }
    job.run_at = now + delay;
    spdlog::info("job {} ({}): attempt {}/{} failed, retrying in {:.1f}s: {}", job.id, job.name,
                 job.attempts, job.max_attempts, delay / 1e6, st.message());
  } else {
    job.state = JobState::kFailed;
    job.finished_at = now;
    if (st.IsTransient()) {
      job.error.message = "gave up after " + std::to_string(job.attempts) +
                          " attempts; last error: " + job.error.message;
    }
  }
  Record(job, {}, std::move(out.log));
}

}  // namespace sluice
