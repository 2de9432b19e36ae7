// Engine control over the API: cancel and prioritise waiting jobs.
#include <spdlog/spdlog.h>

#include "engine/engine.h"

namespace sluice {
namespace {

JobUpdate UpdateOf(const Job& j) {
  JobUpdate u;
  u.job_id = j.id;
  u.state = j.state;
  u.attempts = j.attempts;
  u.interruptions = j.interruptions;
  u.priority = j.priority;
  u.run_at = j.run_at;
  u.last_tried = j.last_tried;
  u.finished_at = j.finished_at;
  u.error = j.error;
  u.result = j.result;
  return u;
}

bool Waiting(JobState s) { return s == JobState::kQueued || s == JobState::kRetrying; }

// Why a job the engine no longer tracks cannot be changed: unknown, or ended.
Status NotWaiting(Store* store, int64_t id) {
  auto stored = store->GetJob(id);
  if (!stored.ok()) return stored.status();
  return Status::FailedPrecondition("job " + std::to_string(id) + " has ended (" +
                                    std::string(StateName(stored->state)) + ")");
}

}  // namespace

Result<Job> Engine::Cancel(int64_t id) {
  Job job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end()) {
      Job& j = it->second.job;
      if (!Waiting(j.state)) {
        return Status::FailedPrecondition("job " + std::to_string(id) + " is " +
                                          std::string(StateName(j.state)) +
                                          "; only a queued or retrying job can be cancelled");
      }
      j.state = JobState::kCancelled;
      j.finished_at = clock_->NowMicros();
      j.error = {"cancelled", "cancelled over the API", ""};
      job = j;
    }
  }
  if (job.id == 0) return NotWaiting(store_, id);
  spdlog::info("job {} cancelled over the API", id);
  writer_->Update(UpdateOf(job));
  return job;
}

Result<Job> Engine::Prioritize(int64_t id) {
  Job job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end()) {
      Job& j = it->second.job;
      if (j.state == JobState::kRunning) return j;
      if (!Waiting(j.state)) {
        return Status::FailedPrecondition("job " + std::to_string(id) + " has ended (" +
                                          std::string(StateName(j.state)) + ")");
      }
      j.priority = std::max(j.priority, kPrioritised);
      j.run_at = 0;
      job = j;
      // A fresh ticket at the new priority; the old one is skipped when it comes up.
      broker_->Push(Ticket{j.id, j.priority, j.file.mtime_ns, 0});
    }
  }
  if (job.id == 0) return NotWaiting(store_, id);
  writer_->Update(UpdateOf(job));
  return job;
}

}  // namespace sluice
