// Job state names, as stored and shown.
#include "store/job.h"

#include "store/store.h"

namespace sluice {

std::string_view StateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kRetrying:
      return "retrying";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
    case JobState::kDeferred:
      return "deferred";
  }
  return "unknown";
}

Result<JobState> ParseState(std::string_view name) {
  for (JobState s :
       {JobState::kQueued, JobState::kRunning, JobState::kRetrying, JobState::kSucceeded,
        JobState::kFailed, JobState::kCancelled, JobState::kDeferred}) {
    if (StateName(s) == name) return s;
  }
  return Status::InvalidArgument(
      "unknown job state '" + std::string(name) +
      "' (queued, running, retrying, succeeded, failed, cancelled, deferred)");
}

JobUpdate UpdateOf(const Job& job) {
  JobUpdate u;
  u.job_id = job.id;
  u.state = job.state;
  u.attempts = job.attempts;
  u.interruptions = job.interruptions;
  u.priority = job.priority;
  u.run_at = job.run_at;
  u.last_tried = job.last_tried;
  u.finished_at = job.finished_at;
  u.error = job.error;
  u.result = job.result;
  return u;
}

Status NotWaiting(const Job& job) {
  return Status::FailedPrecondition("job " + std::to_string(job.id) + " is " +
                                    std::string(StateName(job.state)) +
                                    "; only a queued or retrying job can be changed so");
}

}  // namespace sluice
