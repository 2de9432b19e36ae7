// ClusterWorker: claim, run, commit fenced, acknowledge (see cluster_worker.h).
#include "engine/cluster_worker.h"

#include <pthread.h>

#include <thread>

#include "core/json.h"
#include "core/spdlog.h"
#include "engine/outcome.h"
#include "store/event.h"

namespace sluice {

namespace {

int64_t Micros(double s) { return static_cast<int64_t>(s * 1e6); }

}  // namespace

ClusterWorker::ClusterWorker(ClusterWorkerOptions options, Store* store, Broker* broker,
                             std::map<std::string, Handler*> handlers, Env* env, Clock* clock,
                             std::mutex* commit_order)
    : options_(std::move(options)),
      store_(store),
      broker_(broker),
      handlers_(std::move(handlers)),
      env_(env),
      clock_(clock),
      rng_(std::random_device{}()) {
  writer_ = std::make_unique<Writer>(
      store, options_.max_batch,
      [this](WriteBatch& committed, std::vector<Job>&) { AfterCommit(committed); }, env_, clock_,
      options_.retention, commit_order);
}

ClusterWorker::~ClusterWorker() {
  RequestStop();
  Wait();
}

Status ClusterWorker::Start() {
  for (const auto& [kind, handler] : handlers_) {
    SLUICE_RETURN_IF_ERROR(store_->DefineTables(handler->tables()));
  }
  writer_->Start();
  idle_since_ = clock_->MonotonicMicros();
  for (int i = 0; i < std::max(1, options_.max_workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  claimer_ = std::thread([this] { ClaimLoop(); });
  renewer_ = std::thread([this] { RenewLoop(); });
  started_ = true;
  return Status::Ok();
}

void ClusterWorker::RequestStop() {
  stop_ = true;
  ready_cv_.notify_all();
  broker_->Close();  // wakes the workers' Pops; tickets read ahead go back to the streams
}

void ClusterWorker::Wait() {
  if (!started_.exchange(false)) return;
  writer_->BeginStop();  // a store that cannot be written is waited for kStopGrace, not for ever
  if (claimer_.joinable()) claimer_.join();
  for (auto& w : workers_) w.join();
  workers_.clear();
  writer_->StopAndDrain();  // the last results commit, and their tickets are acknowledged
  done_ = true;
  if (renewer_.joinable()) renewer_.join();
}

size_t ClusterWorker::InHand() const {
  std::lock_guard<std::mutex> lock(mu_);
  return claims_.size();
}

void ClusterWorker::ClaimLoop() {
  pthread_setname_np(pthread_self(), "sluice-claimer");
  // Claimed ahead of the workers, up to this many: larger claim batches (one transaction
  // each) and fewer idle workers, for leases renewed meanwhile.
  size_t slots = 4 * static_cast<size_t>(std::max(1, options_.max_workers));
  while (!stop_) {
    size_t room;
    {
      // Claims only what a worker can start now: a claimed job waiting here holds a lease.
      std::unique_lock<std::mutex> lock(ready_mu_);
      ready_cv_.wait_for(lock, std::chrono::milliseconds(100),
                         [&] { return stop_ || busy_ + ready_.size() < slots; });
      if (stop_) break;
      if (busy_ + ready_.size() >= slots) continue;
      room = slots - busy_ - ready_.size();
    }
    std::vector<Ticket> tickets;
    std::optional<Ticket> t = broker_->Pop(std::chrono::milliseconds(200));
    if (!t) continue;
    tickets.push_back(std::move(*t));
    while (tickets.size() < room) {
      t = broker_->Pop(std::chrono::milliseconds(0));
      if (!t) break;
      tickets.push_back(std::move(*t));
    }
    if (stop_) {
      // Stopping, not claimed: given back for another worker (no delivery counted).
      for (const Ticket& give : tickets) {
        if (give.dead) continue;
        Ticket copy = give;
        copy.delivery.clear();
        broker_->Push(copy);
        broker_->Ack(give);
      }
      break;
    }
    ClaimBatch(tickets);
  }
  std::lock_guard<std::mutex> lock(ready_mu_);
  claimer_done_ = true;
  ready_cv_.notify_all();
}

void ClusterWorker::ClaimBatch(const std::vector<Ticket>& tickets) {
  std::vector<int64_t> ids;
  std::map<int64_t, const Ticket*> by_id;  // one ticket per job; a second one is dropped
  std::vector<const Ticket*> extra;
  for (const Ticket& t : tickets) {
    if (t.dead) {
      DeadLetter(t);
    } else if (by_id.emplace(t.job_id, &t).second) {
      ids.push_back(t.job_id);
    } else {
      extra.push_back(&t);
    }
  }
  for (const Ticket* t : extra) {
    counters_.dropped++;
    broker_->Ack(*t);
  }
  if (ids.empty()) return;
  int64_t now = clock_->NowMicros();
  // One transaction claims them all, one query reads their payloads.
  auto claimed = store_->ClaimJobs(ids, options_.owner, now + Micros(options_.lease_s), now);
  Status st = claimed.status();
  if (st.ok()) st = store_->FillPayloads(&*claimed);
  if (!st.ok()) {
    // The store is away (it says so itself, once per outage): the tickets go back at once,
    // no delivery counted (a job must not become a dead letter for an outage), and this
    // claimer waits a little before it takes more.
    for (const auto& [id, t] : by_id) {
      Ticket copy = *t;
      copy.delivery.clear();  // a fresh entry: its delivery count starts again
      broker_->Push(copy);
      broker_->Ack(*t);
    }
    spdlog::debug("cannot claim {} jobs: {}", ids.size(), st.message());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return;
  }
  // Run in the order the broker handed them out (priority first), not the store's.
  std::map<int64_t, Job> jobs;
  for (Job& job : *claimed) jobs.emplace(job.id, std::move(job));
  std::vector<std::pair<Ticket, Job>> runnable;
  for (const Ticket& t : tickets) {
    auto owner = by_id.find(t.job_id);
    if (owner == by_id.end() || owner->second != &t) continue;  // a dead letter, a 2nd ticket
    auto found = jobs.find(t.job_id);
    if (found == jobs.end()) continue;  // not claimed: dropped below
    Job job = std::move(found->second);
    by_id.erase(owner);
    if (!handlers_.count(job.kind)) {
      // Its queue said another kind (a job whose kind was changed by hand?): not run here;
      // the claim lapses with the lease and the ticket goes to another worker.
      spdlog::error("job {}: a '{}' job came through queue {}; this process does not run it",
                    job.id, job.kind, t.queue);
      continue;
    }
    counters_.claimed++;
    {
      std::lock_guard<std::mutex> lock(mu_);
      claims_[job.id] = Claim{t, job.lease_epoch, false};
    }
    JobUpdate u = UpdateOf(job);
    u.epoch = job.lease_epoch;
    char line[160];
    std::snprintf(line, sizeof(line), "claimed by %s (attempt %d, delivery %d)",
                  options_.owner.c_str(), job.attempts, t.deliveries);
    u.events.push_back(LogEvent(job, now, line));
    u.events.push_back(StateEvent(job, now));
    writer_->Update(std::move(u));
    runnable.emplace_back(t, std::move(job));
  }
  // Not claimable (ended, cancelled, held by a live claim elsewhere, not due): dropped. The
  // reconciler publishes again a waiting job no stream holds.
  for (const auto& [id, t] : by_id) {
    counters_.dropped++;
    broker_->Ack(*t);
  }
  if (runnable.empty()) return;
  std::lock_guard<std::mutex> lock(ready_mu_);
  for (auto& r : runnable) ready_.push_back(std::move(r));
  ready_cv_.notify_all();
}

void ClusterWorker::WorkerLoop() {
  pthread_setname_np(pthread_self(), "sluice-cworker");
  while (true) {
    std::pair<Ticket, Job> next;
    {
      // Claimed jobs run even when stopping: they are in hand.
      std::unique_lock<std::mutex> lock(ready_mu_);
      ready_cv_.wait(lock, [&] { return !ready_.empty() || claimer_done_; });
      if (ready_.empty()) return;
      next = std::move(ready_.front());
      ready_.pop_front();
      busy_++;
    }
    Run(next.first, std::move(next.second));
    {
      std::lock_guard<std::mutex> lock(ready_mu_);
      busy_--;
    }
    ready_cv_.notify_all();
  }
}

void ClusterWorker::Run(const Ticket& t, Job job) {
  HandlerContext ctx;
  ctx.payload = &job.payload;
  ctx.max_file_bytes = options_.max_file_bytes;
  ctx.env = env_;
  ctx.clock = clock_;
  ctx.cancelled = &never_;
  int64_t epoch = job.lease_epoch;
  ctx.live_log = [this, &job, epoch](std::vector<std::string> lines) {
    JobUpdate u = UpdateOf(job);
    u.epoch = epoch;
    int64_t now = clock_->NowMicros();
    for (const std::string& l : lines) u.events.push_back(LogEvent(job, now, l));
    writer_->Update(std::move(u));
  };
  ctx.heartbeat = [] {};  // claims are renewed by RenewLoop while the process lives
  ctx.job_id = job.id;
  ctx.claim_epoch = epoch;
  HandlerOutput out;
  Status st = handlers_.at(job.kind)->Run(ctx, &out);
  SettleTry(&job, st, &out, {options_.retry_delay_s, options_.retry_max_delay_s}, &rng_, &mu_,
            clock_->NowMicros());
  JobUpdate u = UpdateOf(job);
  u.epoch = epoch;
  u.rows = std::move(out.rows);
  int64_t now = clock_->NowMicros();
  for (const std::string& l : out.log) u.events.push_back(LogEvent(job, now, l));
  u.events.push_back(StateEvent(job, now));
  Write(std::move(u), t);
}

void ClusterWorker::DeadLetter(const Ticket& t) {
  int64_t now = clock_->NowMicros();
  auto claimed = store_->ClaimJobs({t.job_id}, options_.owner, now + Micros(options_.lease_s), now);
  if (claimed.ok() && claimed->empty()) {
    // Its last holder's claim may outlast the broker's lease by the clocks' skew: wait it out.
    auto job = store_->GetJob(t.job_id);
    if (job.ok() && job->state == JobState::kRunning && job->lease_until > now &&
        job->lease_until - now <= Micros(options_.lease_s)) {
      std::this_thread::sleep_for(std::chrono::microseconds(job->lease_until - now + 1000));
      now = clock_->NowMicros();
      claimed = store_->ClaimJobs({t.job_id}, options_.owner, now + Micros(options_.lease_s), now);
    }
  }
  if (!claimed.ok() || claimed->empty()) {
    // Finished meanwhile, or the store is away (then the reconciler publishes it again).
    broker_->Ack(t);
    return;
  }
  Job job = std::move(claimed->front());
  counters_.dead_letters++;
  {
    std::lock_guard<std::mutex> lock(mu_);
    claims_[job.id] = Claim{t, job.lease_epoch, false};
  }
  job.state = JobState::kFailed;
  job.finished_at = now;
  job.run_at = 0;
  std::string stream = t.delivery.substr(0, t.delivery.find('\n'));
  std::string entry = t.delivery.substr(t.delivery.find('\n') + 1);
  job.error = {"dead_letter",
               "handed out " + std::to_string(t.deliveries) +
                   " times, and each time its worker went away (died, or stalled past its "
                   "lease) before finishing it; not run again (its log shows who claimed it)",
               "{\"deliveries\":" + std::to_string(t.deliveries) +
                   ",\"stream\":" + JsonQuote(stream) + ",\"entry\":" + JsonQuote(entry) +
                   ",\"queue\":" + JsonQuote(job.queue) + "}"};
  spdlog::error("job {}: {}", job.id, job.error.message);
  JobUpdate u = UpdateOf(job);
  u.epoch = job.lease_epoch;
  u.events.push_back(StateEvent(job, now));
  Write(std::move(u), t);
}

void ClusterWorker::Write(JobUpdate u, const Ticket& ticket) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    unacked_[u.job_id] = ticket;
  }
  writer_->Update(std::move(u));
}

void ClusterWorker::AfterCommit(WriteBatch& committed) {
  if (options_.on_events) options_.on_events(committed.appended);
  std::vector<std::pair<Ticket, std::optional<Ticket>>> acks;  // ticket, and its retry's
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const JobUpdate& u : committed.updates) {
      if (u.state == JobState::kRunning) continue;  // a claim, or a live log line
      auto it = unacked_.find(u.job_id);
      if (it == unacked_.end()) continue;
      std::optional<Ticket> again;
      if (u.state == JobState::kRetrying) {
        counters_.retried++;
        again = it->second;
        again->run_at = u.run_at;
        again->priority = u.priority;
      } else if (u.state == JobState::kSucceeded) {
        counters_.succeeded++;
      } else {
        counters_.failed++;
      }
      acks.emplace_back(it->second, again);
      unacked_.erase(it);
      claims_.erase(u.job_id);
    }
    for (int64_t id : committed.fenced) {
      auto it = unacked_.find(id);
      if (it == unacked_.end()) continue;  // a claim's or a log line's write
      counters_.fenced++;
      spdlog::warn(
          "job {}: result dropped: its claim was taken over by another worker while "
          "this one held it (paused or cut off past its lease)",
          id);
      acks.emplace_back(it->second, std::nullopt);  // no longer ours: Ack does nothing
      unacked_.erase(it);
      claims_.erase(id);
    }
  }
  std::vector<Ticket> done;
  for (auto& [t, again] : acks) {
    if (again) {
      Ticket next = *again;
      next.delivery.clear();
      next.deliveries = 0;
      next.dead = false;
      broker_->Push(next);
    }
    done.push_back(std::move(t));
  }
  broker_->AckAll(done);
}

void ClusterWorker::RenewLoop() {
  pthread_setname_np(pthread_self(), "sluice-renew");
  int64_t every = std::max<int64_t>(Micros(options_.lease_s) / 3, 100'000);
  int64_t last = clock_->MonotonicMicros();
  while (!done_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (options_.burst) MaybeFinishBurst();
    int64_t mono = clock_->MonotonicMicros();
    if (mono - last < every) continue;
    last = mono;
    std::vector<std::pair<int64_t, int64_t>> held;
    std::vector<Ticket> tickets;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, c] : claims_) {
        if (c.lost) continue;
        held.emplace_back(id, c.epoch);
        tickets.push_back(c.ticket);
      }
    }
    if (held.empty()) continue;
    auto lost = store_->ExtendClaims(held, clock_->NowMicros() + Micros(options_.lease_s));
    if (!lost.ok()) {
      // The store is away (it logs the outage): the claims there cannot be renewed, but
      // the entries still are, so that no other worker takes these jobs up meanwhile only to
      // find the store away too. Nobody can claim a job while the store is away; when it is
      // back, the fenced results of jobs nobody took are written as they are.
      for (const Ticket& t : tickets) broker_->Extend(t);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int64_t id : *lost) {
        auto it = claims_.find(id);
        if (it == claims_.end() || it->second.lost) continue;
        it->second.lost = true;
        spdlog::warn(
            "job {}: its claim was taken over (this process was paused or cut off past "
            "its lease); its result will be dropped",
            id);
      }
    }
    for (const Ticket& t : tickets) broker_->Extend(t);
  }
}

void ClusterWorker::MaybeFinishBurst() {
  if (stop_) return;
  int64_t mono = clock_->MonotonicMicros();
  bool idle;
  {
    std::lock_guard<std::mutex> lock(ready_mu_);
    idle = busy_ == 0 && ready_.empty();
  }
  idle = idle && writer_->Pending() == 0;
  if (idle) {
    std::lock_guard<std::mutex> lock(mu_);
    idle = claims_.empty() && unacked_.empty();
  }
  if (idle) {
    idle = broker_->HeldCount() == 0;
  }
  if (!idle) {
    idle_since_ = mono;
    return;
  }
  // Quiet for a second: nothing in any stream of its queues, nothing handed out anywhere.
  if (mono - idle_since_ >= 1'000'000) {
    spdlog::info("burst: nothing ready or running in its queues; stopping");
    RequestStop();
  }
}

}  // namespace sluice
