// Engine workers: claim a job, run the handler, hand the outcome to the writer.
#include <pthread.h>

#include "core/allocator.h"
#include "core/spdlog.h"
#include "engine/engine.h"
#include "engine/outcome.h"

namespace sluice {
namespace {

// A file this large leaves its worker's arena with that much free memory, given back at once.
constexpr uint64_t kLargeFile = 32 << 20;

}  // namespace

void Engine::WorkerLoop() {
  pthread_setname_np(pthread_self(), "sluice-worker");
  while (!stop_) {
    std::optional<Ticket> t = broker_->Pop(std::chrono::milliseconds(200));
    if (!t) {
      if (stop_) return;
      continue;
    }
    // Only a waiting job runs: a ticket may be stale (the job was prioritised, so it has a
    // newer ticket, or cancelled, or is running already).
    auto waiting = [this, &t] {
      auto it = jobs_.find(t->job_id);
      bool runs = it != jobs_.end() && (it->second.job.state == JobState::kQueued ||
                                        it->second.job.state == JobState::kRetrying);
      return runs ? it : jobs_.end();
    };
    uint64_t size = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = waiting();
      if (it == jobs_.end()) continue;
      if (!it->second.job.spool.empty()) size = it->second.job.file.size;
    }
    // The file's bytes are taken from the daemon's reading budget while it waits as queued.
    ReadBudget::Grant reading;
    if (size > 0) {
      bool taken = false;
      reading = reading_->Take(size, stop_, &taken);
      if (!taken) continue;  // stopping
    }
    Job job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = waiting();
      if (it == jobs_.end()) continue;
      Job& j = it->second.job;
      j.state = JobState::kRunning;
      j.attempts++;
      j.last_tried = clock_->NowMicros();
      it->second.beat = clock_->MonotonicMicros();
      ++it->second.claim;
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
    RunJob(std::move(job), std::move(reading));
  }
}

bool Engine::FileReplaced(Job* job) {
  if (job->spool.empty() || job->file.ino == 0) return false;
  // A retry reads its file again. Another file renamed over the name since the last try is a
  // new submission, not this job's: it runs as a job of its own once this one ends (the mover
  // leaves it and it is examined again), so this one must not run it too.
  auto now = spool_.Stat(job->name);
  if (!now.ok() || !job->file.OtherFileThan(IdentityOf(*now))) return false;
  job->attempts--;  // this try never ran
  job->state = JobState::kCancelled;
  job->finished_at = clock_->NowMicros();
  job->error = {"file_replaced",
                "another file was put under its name before this retry; that one runs as a new job",
                ""};
  spdlog::warn("job {} ({}): {}", job->id, job->name, job->error.message);
  return true;
}

void Engine::ExpireLeases() {
  if (options_.worker_lease_s <= 0) return;
  int64_t mono = clock_->MonotonicMicros();
  if (mono - last_lease_check_ < 1'000'000) return;
  last_lease_check_ = mono;
  int64_t lease = static_cast<int64_t>(options_.worker_lease_s * 1e6);
  std::vector<Job> lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, t] : jobs_) {
      if (t.job.state != JobState::kRunning || mono - t.beat < lease) continue;
      ++t.claim;      // the silent worker's result, if it ever comes, is dropped
      t.beat = mono;  // not again before its new state is committed
      // Recorded like any failed try: the commit sets the state and queues the retry.
      Job j = t.job;
      int64_t now = clock_->NowMicros();
      char why[96];
      std::snprintf(why, sizeof(why), "its worker sent no heartbeat for %g s",
                    options_.worker_lease_s);
      j.error = {"worker_lost", why, ""};
      if (j.attempts < j.max_attempts) {
        j.state = JobState::kRetrying;
        j.run_at = now;
      } else {
        j.state = JobState::kFailed;
        j.finished_at = now;
      }
      lost.push_back(j);
    }
  }
  for (const Job& j : lost) {
    spdlog::error("job {} ({}): {}; {}", j.id, j.name, j.error.message,
                  j.state == JobState::kFailed ? "it failed" : "another worker takes it");
    Record(j);
  }
}

// `reading` (the file's share of the reading budget) is given back on return: once the rows
// are the writer's, which takes them within its own bound (Writer::kMaxRowBytes).
void Engine::RunJob(Job job, ReadBudget::Grant reading) {
  if (job.attempts > 1 && FileReplaced(&job)) return Record(job);
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
    std::vector<FileIdentity> seen;
    for (const std::string& suffix : options_.companions) {
      std::string companion = SpoolDir::CompanionOf(job.name, suffix);
      ctx.files[suffix.substr(suffix.rfind('.') + 1)] = spool_.PathOf(companion);
      auto info = spool_.Stat(companion);
      if (missing.empty() && !info.ok()) missing = companion;
      seen.push_back(info.ok() ? IdentityOf(*info) : FileIdentity{});
    }
    // The companions this attempt runs with: only they leave with the job (MoveFile).
    if (!seen.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = jobs_.find(job.id); it != jobs_.end()) it->second.companions = seen;
    }
  }
  ctx.max_file_bytes = options_.max_file_bytes;
  ctx.env = env_;
  ctx.clock = clock_;
  ctx.cancelled = &stop_;
  uint64_t claim;
  {
    std::lock_guard<std::mutex> lock(mu_);
    claim = jobs_[job.id].claim;
  }
  // True while this worker still holds the job (its lease was not given away).
  auto holds = [this, &job, claim] {
    auto it = jobs_.find(job.id);
    return it != jobs_.end() && it->second.claim == claim;
  };
  ctx.live_log = [this, &job, holds](std::vector<std::string> lines) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!holds()) return;
      jobs_[job.id].beat = clock_->MonotonicMicros();
    }
    RecordLog(job, std::move(lines));
  };
  ctx.heartbeat = [this, &job, holds] {
    std::lock_guard<std::mutex> lock(mu_);
    if (holds()) jobs_[job.id].beat = clock_->MonotonicMicros();
  };
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!holds()) {
      spdlog::warn("job {} ({}): dropping the result of a try whose lease was given away", job.id,
                   job.name);
      return;
    }
    jobs_[job.id].beat = clock_->MonotonicMicros();  // kept until its result is recorded
  }

  if (st.ok()) {
    counters_.objects += out.objects;
    counters_.bytes += out.bytes;
  }
  SettleTry(&job, st, &out, {options_.retry_delay_s, options_.retry_max_delay_s}, &rng_, &mu_,
            clock_->NowMicros());
  if (st.ok()) {
    Record(job, std::move(out.rows), std::move(out.log));
  } else {
    Record(job, {}, std::move(out.log));
  }
  reading.Release();
  if (job.file.size >= kLargeFile) ReturnFreeMemory();
}

}  // namespace sluice
