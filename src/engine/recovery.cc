// Engine recovery on start: pick up what a dead daemon left half done.
#include <spdlog/spdlog.h>

#include "engine/engine.h"

namespace sluice {

Status Engine::Recover() {
  auto jobs = store_->UnfinishedJobs();
  if (!jobs.ok()) return jobs.status();
  int64_t now = clock_->NowMicros();
  size_t requeued = 0, interrupted = 0, vanished = 0;
  for (Job& j : *jobs) {
    bool over_http = j.spool.empty();
    if (!over_http && j.spool != spool_.root()) continue;  // another spool's job
    if (!over_http && RecoverDeferred(&j)) continue;
    Job fail = j;
    fail.state = JobState::kFailed;
    fail.finished_at = now;
    bool failing = false;
    if (!over_http && spool_.Stat(j.name).status().IsNotFound()) {
      fail.error = {"file_vanished", "the file disappeared from the spool before it was processed",
                    ""};
      failing = true;
      ++vanished;
    } else if (j.state == JobState::kRunning) {
      // The try was cut short: it does not use up an attempt, it counts as an interruption.
      j.attempts = std::max(0, j.attempts - 1);
      j.interruptions++;
      j.state = JobState::kQueued;
      fail.attempts = j.attempts;
      fail.interruptions = j.interruptions;
      if (j.interruptions >= options_.max_interruptions) {
        fail.error = {"interrupted",
                      "the daemon died " + std::to_string(j.interruptions) +
                          " times while processing this file (a crash it causes, or kill -9);"
                          " giving up",
                      ""};
        failing = true;
        ++interrupted;
      } else {
        Record(j, {},
               {"interrupted (the daemon stopped during attempt " + std::to_string(j.attempts + 1) +
                "); queued again"});
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (over_http) {
      api_ids_.insert(j.id);
    } else {
      by_name_[j.name] = j.id;
    }
    if (failing) {
      jobs_[j.id] = Tracked{j};
      Record(fail);
      continue;
    }
    broker_->Push(Ticket{j.id, j.priority, j.file.mtime_ns, j.run_at});
    jobs_[j.id] = Tracked{std::move(j)};
    ++requeued;
  }
  if (requeued + interrupted + vanished > 0) {
    spdlog::info("recovered {} unfinished jobs ({} requeued, {} given up, {} files vanished)",
                 requeued + interrupted + vanished, requeued, interrupted, vanished);
  }
  return Status::Ok();
}

bool Engine::RecoverDeferred(Job* j) {
  bool in_deferred = spool_.StatDeferred(j->name).ok();
  bool in_root = spool_.Stat(j->name).ok();
  if (j->state == JobState::kDeferred) {
    if (in_deferred) {
      std::lock_guard<std::mutex> lock(mu_);
      deferred_ids_[j->name] = j->id;
      jobs_[j->id] = Tracked{*j};
      return true;
    }
    if (in_root) {
      // Promoted, and the daemon died before the promotion committed.
      j->state = JobState::kQueued;
      Record(*j, {}, {"promoted from deferred/"});
    }
    return false;  // queued from the spool, or failed as vanished
  }
  if (!in_root && in_deferred) {
    // Promoted, and the daemon died before the move was made durable: move it again.
    Status st = spool_.Undefer(j->name);
    if (!st.ok()) spdlog::warn("cannot move deferred/{} in again: {}", j->name, st.ToString());
  }
  return false;
}

int64_t Engine::AdoptFinishedFile(Job job) {
  spdlog::info("job {} ({}) finished before a restart; moving its file now", job.id, job.name);
  int64_t id = job.id;
  std::lock_guard<std::mutex> lock(mu_);
  by_name_[job.name] = id;
  jobs_[id] = Tracked{std::move(job), true, 0};
  return id;
}

}  // namespace sluice
