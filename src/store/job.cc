// Job state names, as stored and shown.
#include "store/job.h"

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

}  // namespace sluice
