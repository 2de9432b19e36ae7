// Engine control over the API: cancel, prioritise and retry jobs.
#include <chrono>
#include <thread>

#include "core/spdlog.h"
#include "engine/engine.h"

namespace sluice {
namespace {

bool Waiting(JobState s) { return s == JobState::kQueued || s == JobState::kRetrying; }

// Why a job the engine no longer tracks cannot be changed: unknown, or ended.
Status NotWaiting(Store* store, int64_t id) {
  auto stored = store->GetJob(id);
  if (!stored.ok()) return stored.status();
  if (stored->state == JobState::kDeferred) {
    return Status::FailedPrecondition("job " + std::to_string(id) + " is deferred: promote " +
                                      stored->name + " first (POST /api/v1/promote)");
  }
  return Status::FailedPrecondition("job " + std::to_string(id) + " has ended (" +
                                    std::string(StateName(stored->state)) + ")");
}

}  // namespace

Result<Job> Engine::ChangeClusterJob(int64_t id, const std::function<void(Job*)>& change) {
  // Any process may claim it at any moment: the change is written fenced on an epoch taken
  // for it, so it is applied only if no claim came in between.
  auto reserved = store_->ReserveWaitingJob(id);
  if (!reserved.ok()) return reserved.status();
  Job job = std::move(*reserved);
  change(&job);
  WriteBatch batch;
  JobUpdate u = UpdateOf(job);
  u.epoch = job.lease_epoch;
  u.events.push_back(StateEvent(job, clock_->NowMicros()));
  batch.updates.push_back(std::move(u));
  SLUICE_RETURN_IF_ERROR(store_->Write(&batch));
  if (!batch.fenced.empty()) {
    auto now = store_->GetJob(id);  // a worker took it first: it runs
    if (!now.ok()) return now.status();
    return Status::FailedPrecondition("job " + std::to_string(id) + " is " +
                                      std::string(StateName(now->state)) +
                                      ": a worker took it first");
  }
  hub_ptr_->Publish(batch.appended);
  return job;
}

Result<Job> Engine::Cancel(int64_t id) {
  if (options_.api_broker != nullptr) {
    auto stored = store_->GetJob(id);
    if (!stored.ok()) return stored.status();
    if (stored->spool.empty()) {
      auto done = ChangeClusterJob(id, [this](Job* j) {
        j->state = JobState::kCancelled;
        j->finished_at = clock_->NowMicros();
        j->error = {"cancelled", "cancelled over the API", ""};
      });
      if (done.ok()) spdlog::info("job {} cancelled over the API", id);
      return done;
    }
  }
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
  Record(job);
  return job;
}

Result<Job> Engine::Prioritize(int64_t id) {
  if (options_.api_broker != nullptr) {
    auto stored = store_->GetJob(id);
    if (!stored.ok()) return stored.status();
    if (stored->spool.empty()) {
      if (stored->state == JobState::kRunning) return *stored;
      auto done = ChangeClusterJob(id, [](Job* j) {
        j->priority = std::max(j->priority, kPrioritised);
        j->run_at = 0;
      });
      if (!done.ok()) {
        auto now = store_->GetJob(id);
        if (now.ok() && now->state == JobState::kRunning) return *now;  // taken meanwhile
        return done.status();
      }
      // A ticket of its own in the high streams; the old one is dropped when it comes up.
      options_.api_broker->Push(Ticket{id, done->priority, done->created_at * 1000, 0,
                                       BrokerQueue(done->queue, done->kind)});
      return done;
    }
  }
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
      // Recorded before a worker can take it, so the writer has the change first. A fresh
      // ticket at the new priority; the old one is skipped when it comes up.
      Record(job);
      broker_->Push(Ticket{j.id, j.priority, j.file.mtime_ns, 0});
    }
  }
  if (job.id == 0) return NotWaiting(store_, id);
  return job;
}

Result<Job> Engine::Retry(int64_t id, bool* as_new_file, std::vector<int64_t>* moved,
                          int64_t wait_until) {
  *as_new_file = false;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(id);
      if (it == jobs_.end()) break;
      if (!it->second.move_pending) {
        return Status::FailedPrecondition("job " + std::to_string(id) + " is " +
                                          std::string(StateName(it->second.job.state)) +
                                          "; only a failed or cancelled job can be retried");
      }
      if (it->second.job.spool.empty()) break;
      if (clock_->MonotonicMicros() >= wait_until) {
        return Status::Unavailable("job " + std::to_string(id) +
                                   " has just ended: its file is still being moved to " +
                                   spool_.FailedDir() + "; retry it in a moment");
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto stored = store_->GetJob(id);
  if (!stored.ok()) return stored.status();
  Job job = std::move(*stored);
  if (job.state != JobState::kFailed && job.state != JobState::kCancelled) {
    return Status::FailedPrecondition("job " + std::to_string(id) + " is " +
                                      std::string(StateName(job.state)) +
                                      "; only a failed or cancelled job can be retried");
  }
  if (!job.spool.empty()) {
    if (job.retried_at != 0) {
      return Status::FailedPrecondition("job " + std::to_string(id) + " was retried already, at " +
                                        FormatTime(job.retried_at) +
                                        ": its file went back into the spool as a new job");
    }
    if (job.spool != spool_.root()) {
      return Status::FailedPrecondition("job " + std::to_string(id) + " came from " + job.spool +
                                        ", a spool this daemon does not run");
    }
    auto failed_name = spool_.FailedNameOf(job.name, id);
    if (!failed_name.ok()) return Status::FailedPrecondition(failed_name.status().message());
    // Its companions first, so the file is whole again when it reappears (one that never
    // came is waited for again).
    for (const std::string& suffix : options_.companions) {
      std::string companion = SpoolDir::CompanionOf(job.name, suffix);
      auto failed_companion = spool_.FailedNameOf(companion, id);
      if (failed_companion.ok()) {
        SLUICE_RETURN_IF_ERROR(spool_.Restore(*failed_companion, companion));
      }
    }
    SLUICE_RETURN_IF_ERROR(spool_.Restore(*failed_name, job.name));
    spdlog::info("job {} retried over the API: {} is back in the spool", id, job.name);
    // Its history says so (the row is rewritten as it is; only the log line is new).
    RecordLog(job, {"retried over the API: " + job.name +
                    " is back in the spool, to run as a "
                    "new job"});
    *as_new_file = true;
    if (moved != nullptr) {
      moved->push_back(id);
    } else {
      SLUICE_RETURN_IF_ERROR(SettleRetries({id}));
    }
    job.retried_at = clock_->NowMicros();
    return job;
  }
  auto payload = store_->JobPayload(id);
  if (!payload.ok()) return payload.status();
  job.payload = std::move(*payload);
  job.state = JobState::kQueued;
  job.attempts = 0;
  job.interruptions = 0;
  job.run_at = 0;
  job.finished_at = 0;
  job.error = {};
  job.result.clear();
  if (options_.api_broker != nullptr) {
    // Any cluster worker runs it; a ticket that reaches one before this change commits finds
    // it failed still and is dropped, and the reconciler publishes it again.
    Record(job, {}, {"retried over the API"});
    options_.api_broker->Push(
        Ticket{id, job.priority, job.created_at * 1000, 0, BrokerQueue(job.queue, job.kind)});
    spdlog::info("job {} retried over the API", id);
    return job;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end() && !it->second.move_pending) {
      return Status::FailedPrecondition("job " + std::to_string(id) + " is being retried already");
    }
    jobs_[id] = Tracked{job};
    TrackApiJobLocked(job);
    Record(job, {}, {"retried over the API"});  // before a worker can take it
    broker_->Push(Ticket{id, job.priority, job.created_at * 1000, 0});
  }
  spdlog::info("job {} retried over the API", id);
  return job;
}

Status Engine::SettleRetries(const std::vector<int64_t>& moved) {
  if (moved.empty()) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(spool_.Sync());
  return store_->MarkRetried(moved, clock_->NowMicros()).status();
}

}  // namespace sluice
