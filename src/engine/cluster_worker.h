// ClusterWorker: runs HTTP jobs handed out by a shared broker (Redis Streams), on any
// process of a cluster: `sluice worker`, and `sluice serve --broker` beside its spools.
//
// One thread takes tickets (up to four per worker thread ahead) and claims their jobs in the
// store in one transaction (Store::ClaimJobs: state running, one more attempt, a new lease
// epoch, owned by this process until now + lease), then hands them to the workers in the
// broker's order (priority first); a ticket whose job cannot be claimed (finished, cancelled, held
// by a live claim elsewhere, not due) is acknowledged and dropped: the store is the truth, and the
// reconciler publishes again a job that is waiting and in no stream. The handler runs; its outcome
// is written fenced on the claim's epoch, and the ticket is acknowledged only after that commit. A
// retry is published again (delayed) after its commit.
//
// While jobs run, one thread renews every claim a third of the lease: in the store
// (ExtendClaims) and in the broker (Extend). A claim found taken over (this process was
// paused, or cut off, past its lease, and another worker took the job) is marked lost: its
// result, when it comes, is dropped by the store's fence and logged here.
//
// A ticket the broker hands out with `dead` set (its lease lapsed max_deliveries times: every
// worker that took it died or stalled) fails its job as dead_letter, with the deliveries in
// its error, instead of running it.
//
// RequestStop: no new ticket is taken; jobs in hand run to their end, are committed and
// acknowledged, then Wait returns. With `burst`, the worker stops by itself once its queues
// hold nothing (ready, delayed or handed out anywhere) and it has nothing in hand.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "core/clock.h"
#include "core/env.h"
#include "engine/writer.h"
#include "handlers/handler.h"
#include "store/store.h"

namespace sluice {

struct ClusterWorkerOptions {
  std::string owner;  // this process's name: the claims' lease_owner
  int max_workers = 5;
  double lease_s = 15;
  double retry_delay_s = 2.0;
  double retry_max_delay_s = 300;
  uint64_t max_file_bytes = 512ull << 20;
  bool burst = false;
  size_t max_batch = 1024;
  RetentionOptions retention;
  // Each commit's events, once committed (a cluster sends them to the other processes).
  std::function<void(const std::vector<Event>&)> on_events;
};

struct ClusterWorkerCounters {
  std::atomic<uint64_t> claimed{0};
  std::atomic<uint64_t> succeeded{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> dead_letters{0};
  std::atomic<uint64_t> dropped{0};  // tickets whose job could not be claimed
  std::atomic<uint64_t> fenced{0};   // results dropped: the claim had been taken over
};

class ClusterWorker {
 public:
  // `handlers`: by kind, the handlers this process can run (not owned). `commit_order`: as
  // for the Writer (the daemon's other writers hold it too).
  ClusterWorker(ClusterWorkerOptions options, Store* store, Broker* broker,
                std::map<std::string, Handler*> handlers, Env* env, Clock* clock,
                std::mutex* commit_order = nullptr);
  ~ClusterWorker();

  Status Start();
  void RequestStop();
  // True once stopped by itself (burst) or after RequestStop().
  bool Done() const { return stop_.load(); }
  // Waits until Done(), then joins the threads (jobs in hand committed and acknowledged).
  void Wait();
  // After Wait: why the last results were given up (the store could not be written within
  // Writer::kStopGrace of the stop); OK when everything finished was committed.
  Status Abandoned() const { return writer_->Abandoned(); }
  const ClusterWorkerCounters& counters() const { return counters_; }
  // Jobs in hand now.
  size_t InHand() const;

 private:
  struct Claim {
    Ticket ticket;
    int64_t epoch = 0;
    bool lost = false;  // taken over by another worker
  };
  // One thread takes tickets (as many as workers are free), claims their jobs in one
  // transaction, and hands them to the workers.
  void ClaimLoop();
  void ClaimBatch(const std::vector<Ticket>& tickets);
  void WorkerLoop();
  void Run(const Ticket& t, Job job);
  void DeadLetter(const Ticket& t);
  void RenewLoop();
  void MaybeFinishBurst();
  // Hands `u` (fenced on `epoch`) to the writer; `ticket` is acknowledged after its commit.
  void Write(JobUpdate u, const Ticket& ticket);
  void AfterCommit(WriteBatch& committed);

  ClusterWorkerOptions options_;
  Store* store_;
  Broker* broker_;
  std::map<std::string, Handler*> handlers_;
  Env* env_;
  Clock* clock_;
  std::unique_ptr<Writer> writer_;

  mutable std::mutex mu_;
  std::map<int64_t, Claim> claims_;    // job id -> the claim this process holds
  std::map<int64_t, Ticket> unacked_;  // job id -> ticket to acknowledge after the commit
  std::mt19937_64 rng_;
  mutable std::mutex ready_mu_;
  std::condition_variable ready_cv_;
  std::deque<std::pair<Ticket, Job>> ready_;  // claimed, for the next free worker
  size_t busy_ = 0;                           // workers running a job (under ready_mu_)
  bool claimer_done_ = false;                 // under ready_mu_
  std::thread claimer_;
  int64_t idle_since_ = 0;                // burst: monotonic micros since nothing was held anywhere
  const std::atomic<bool> never_{false};  // handlers are not cut short: jobs in hand finish
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> started_{false};
  std::vector<std::thread> workers_;
  std::thread renewer_;
  ClusterWorkerCounters counters_;
};

}  // namespace sluice
