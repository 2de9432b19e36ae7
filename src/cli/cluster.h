// ClusterNode: what one process of a cluster (`--broker`) runs: the Redis broker, a
// ClusterWorker for the HTTP jobs and task runs of its queues (every node runs task runs:
// engine/task_run_handler.h), and, while it holds the "reconciler" lease,
// the reconciler (engine/reconciler.h). `sluice serve --broker` runs one beside its spools;
// `sluice worker` is one alone. docs/deploy.md says how the parts fit.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker/redis/redis_broker.h"
#include "cli/serve.h"
#include "core/metrics.h"
#include "engine/cluster_worker.h"
#include "engine/ownership.h"
#include "engine/reconciler.h"
#include "engine/task_run_handler.h"
#include "store/store.h"

namespace sluice::cli {

class ClusterNode {
 public:
  // Connects to `f.broker` as `ownership->owner()`, to read the jobs of `f.queues` (all when
  // empty) and `kinds` (those this process runs, and task runs). Refused (InvalidArgument) with a
  // store other processes cannot share (SQLite).
  static Result<std::unique_ptr<ClusterNode>> Open(const ServeFlags& f, Store* store,
                                                   Ownership* ownership,
                                                   std::set<std::string> kinds);
  ~ClusterNode();
  // Why a cluster cannot run on a SQLite database.
  static Status SqliteRefused();

  Broker* broker() { return broker_.get(); }
  // Live events between the cluster's processes (the same Redis).
  EventFanOut* fanout() { return broker_.get(); }
  // Starts `options.max_workers` workers for the kinds of `handlers` (not owned) and task runs.
  Status StartWorkers(std::map<std::string, Handler*> handlers, ClusterWorkerOptions options,
                      std::mutex* commit_order);
  // From the daemon's main loop: takes the reconciler's lease when it is free, and starts a
  // pass every --reconcile-interval while it holds it. The pass runs on a thread of its own:
  // over a large backlog it takes seconds, and the main loop renews the process's leases.
  void Tick();
  void RequestStop();
  // The workers stopped by themselves (burst) or were asked to.
  bool Done() const { return !worker_ || worker_->Done(); }
  void Wait();
  const ClusterWorker* worker() const { return worker_.get(); }
  // The broker's streams and the workers' counters, for /metrics.
  void AppendMetrics(Exposition* x) const;
  const RedisBroker& redis() const { return *broker_; }

 private:
  ClusterNode() = default;
  void Passes();  // the reconciler's thread
  const ServeFlags* flags_ = nullptr;
  Store* store_ = nullptr;
  Ownership* ownership_ = nullptr;
  double interval_s_ = 5;
  std::unique_ptr<RedisBroker> broker_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<TaskRunHandler> task_runs_;
  std::unique_ptr<ClusterWorker> worker_;
  int64_t last_pass_ = 0;  // monotonic micros
  std::thread passes_;
  std::mutex pass_mu_;
  std::condition_variable pass_cv_;
  bool pass_wanted_ = false;
  bool passes_stop_ = false;
};

}  // namespace sluice::cli
