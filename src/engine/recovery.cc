// Engine recovery on start: pick up what a dead daemon left half done.
#include "core/spdlog.h"
#include "engine/engine.h"
#include "engine/ownership.h"

namespace sluice {

Result<std::vector<Job>> Engine::AdoptableApiJobs(const std::vector<Job>& jobs) {
  std::vector<Job> out;
  // In a cluster the HTTP jobs are the cluster workers' (and the reconciler's), not an engine's.
  if (!options_.takes_api_jobs || options_.api_broker != nullptr) return out;
  std::map<std::string, std::vector<int64_t>> by_owner;  // owners gone -> their jobs
  std::vector<Lease> leases;
  if (!options_.owner.empty()) {
    auto l = store_->ListLeases();
    if (!l.ok()) return l.status();
    leases = std::move(*l);
  }
  int64_t now = clock_->NowMicros();
  std::map<int64_t, const Job*> candidates;
  for (const Job& j : jobs) {
    if (!j.spool.empty() || j.kind != handler_->kind()) continue;
    if (options_.owner.empty() || j.lease_owner == options_.owner) {
      out.push_back(j);
      continue;
    }
    if (!j.lease_owner.empty() && Ownership::Alive(leases, j.lease_owner, now)) continue;
    by_owner[j.lease_owner].push_back(j.id);
    candidates[j.id] = &j;
  }
  // A daemon that is gone: its jobs move to this one, each to one daemon only.
  for (const auto& [owner, ids] : by_owner) {
    auto moved = store_->AdoptJobs(ids, owner, options_.owner);
    if (!moved.ok()) return moved.status();
    if (!moved->empty()) {
      spdlog::info("took over {} unfinished HTTP jobs of {}, a daemon that is gone", moved->size(),
                   owner.empty() ? "an earlier daemon" : owner);
    }
    for (int64_t id : *moved) {
      out.push_back(*candidates[id]);
      out.back().lease_owner = options_.owner;
    }
  }
  return out;
}

void Engine::AdoptOrphans() {
  if (options_.owner.empty() || !options_.takes_api_jobs || options_.api_broker != nullptr) return;
  int64_t mono = clock_->MonotonicMicros();
  if (mono - last_adopt_ < SecondsToMicros(options_.adopt_interval_s)) return;
  last_adopt_ = mono;
  auto jobs = store_->UnfinishedJobs();
  if (!jobs.ok()) return;
  std::vector<Job> mine;
  for (Job& j : *jobs) {
    // Those this engine tracks already are not orphans.
    std::lock_guard<std::mutex> lock(mu_);
    if (j.spool.empty() && j.lease_owner != options_.owner && !jobs_.count(j.id)) {
      mine.push_back(std::move(j));
    }
  }
  auto adopted = AdoptableApiJobs(mine);
  if (!adopted.ok()) {
    spdlog::warn("looking for the HTTP jobs of daemons that are gone: {}",
                 adopted.status().message());
    return;
  }
  for (Job& j : *adopted) RecoverJob(std::move(j), clock_->NowMicros(), nullptr);
}

Status Engine::Recover() {
  auto all = store_->UnfinishedJobs();
  if (!all.ok()) return all.status();
  auto api = AdoptableApiJobs(*all);
  if (!api.ok()) return api.status();
  std::vector<Job> jobs;
  for (Job& j : *all) {
    if (!j.spool.empty() && j.spool == spool_.root()) jobs.push_back(std::move(j));
  }
  for (Job& j : *api) jobs.push_back(std::move(j));
  int64_t now = clock_->NowMicros();
  RecoveryCounts counts;
  for (Job& j : jobs) RecoverJob(std::move(j), now, &counts);
  if (counts.requeued + counts.interrupted + counts.vanished > 0) {
    spdlog::info("recovered {} unfinished jobs ({} requeued, {} given up, {} files vanished)",
                 counts.requeued + counts.interrupted + counts.vanished, counts.requeued,
                 counts.interrupted, counts.vanished);
  }
  return Status::Ok();
}

void Engine::RecoverJob(Job j, int64_t now, RecoveryCounts* counts) {
  RecoveryCounts ignored;
  if (counts == nullptr) counts = &ignored;
  size_t& requeued = counts->requeued;
  size_t& interrupted = counts->interrupted;
  size_t& vanished = counts->vanished;
  {
    bool over_http = j.spool.empty();
    if (!over_http && RecoverDeferred(&j)) return;
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
      TrackApiJobLocked(j);
    } else {
      by_name_[j.name] = j.id;
    }
    if (failing) {
      jobs_[j.id] = Tracked{j};
      Record(fail);
      return;
    }
    broker_->Push(Ticket{j.id, j.priority, j.file.mtime_ns, j.run_at});
    jobs_[j.id] = Tracked{std::move(j)};
    ++requeued;
  }
}

bool Engine::RecoverDeferred(Job* j) {
  bool in_deferred = spool_.StatDeferred(j->name).ok();
  bool in_root = spool_.Stat(j->name).ok();
  if (j->state == JobState::kDeferred) {
    if (in_deferred) {
      std::lock_guard<std::mutex> lock(mu_);
      deferred_[j->name] = Deferred::Of(*j);
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
