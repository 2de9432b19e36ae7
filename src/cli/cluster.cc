// ClusterNode: the broker, the cluster's workers and the reconciler of one process.
#include "cli/cluster.h"

#include <pthread.h>

#include "core/spdlog.h"
#include "engine/task_runs.h"
#include "handlers/git/git_backend.h"

namespace sluice::cli {

Status ClusterNode::SqliteRefused() {
  return Status::InvalidArgument(
      "--broker needs a database every process of the cluster shares (--database "
      "postgresql://…): a SQLite file belongs to one process, so there is no one to share "
      "the work with");
}

Result<std::unique_ptr<ClusterNode>> ClusterNode::Open(const ServeFlags& f, Store* store,
                                                       Ownership* ownership,
                                                       std::set<std::string> kinds) {
  if (!store->Shared() || ownership == nullptr) return SqliteRefused();
  kinds.insert(kTaskJobKind);
  auto node = std::unique_ptr<ClusterNode>(new ClusterNode());
  node->flags_ = &f;
  node->store_ = store;
  node->ownership_ = ownership;
  node->interval_s_ = f.reconcile_interval_s;
  RedisBrokerOptions bo;
  bo.url = f.broker;
  bo.shards = f.shards;
  bo.prefix = f.broker_prefix;
  bo.max_deliveries = f.max_deliveries;
  bo.lease_ms = static_cast<int>(f.lease_s * 1000);
  bo.serves = [queues = std::set<std::string>(f.queues.begin(), f.queues.end()),
               kinds](const std::string& name) {
    std::string queue, kind;
    return SplitBrokerQueue(name, &queue, &kind) && kinds.count(kind) &&
           (queues.empty() || queues.count(queue));
  };
  bo.consumer = ownership->owner();
  auto broker = RedisBroker::Open(bo, Clock::Real());
  if (!broker.ok()) return broker.status().Annotate("--broker");
  node->broker_ = std::move(*broker);
  RedisBroker* redis = node->broker_.get();
  node->reconciler_ = std::make_unique<Reconciler>(
      store, redis, [redis] { return redis->HeldJobIds(); }, Clock::Real());
  auto list = [](const auto& names) {
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : ",") + n;
    return s.empty() ? std::string("all") : s;
  };
  spdlog::info("cluster: broker {} ({} shards per queue); runs {} jobs of queues {}",
               redis->server(), f.shards, list(kinds), list(f.queues));
  return node;
}

ClusterNode::~ClusterNode() {
  RequestStop();
  Wait();
}

Status ClusterNode::StartWorkers(std::map<std::string, Handler*> handlers,
                                 ClusterWorkerOptions options, std::mutex* commit_order) {
  options.owner = ownership_->owner();
  RedisBroker* wire = broker_.get();
  options.on_events = [wire](const std::vector<Event>& events) { wire->PublishEvents(events); };
  TaskRunOptions to;
  to.owner = options.owner;
  to.lease_s = options.lease_s;
  to.retry_delay_s = flags_->tasks.retry_delay_s;
  to.on_events = options.on_events;
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(std::make_unique<GitBackend>(flags_->archive_path, flags_->task_timeout_s));
  task_runs_ = std::make_unique<TaskRunHandler>(to, store_, std::move(backends), Clock::Real());
  handlers.emplace(kTaskJobKind, task_runs_.get());
  worker_ = std::make_unique<ClusterWorker>(options, store_, broker_.get(), std::move(handlers),
                                            Env::Default(), Clock::Real(), commit_order);
  return worker_->Start();
}

void ClusterNode::Tick() {
  int64_t mono = Clock::Real()->MonotonicMicros();
  if (last_pass_ != 0 && mono - last_pass_ < static_cast<int64_t>(interval_s_ * 1e6)) return;
  last_pass_ = mono;
  auto held = ownership_->TryAcquire({Ownership::kReconcilerLease});
  if (!held.ok() || !*held) return;
  std::lock_guard<std::mutex> lock(pass_mu_);
  if (passes_stop_) return;
  if (!passes_.joinable()) passes_ = std::thread([this] { Passes(); });
  pass_wanted_ = true;  // one pass at a time: a pass still running takes this one's place
  pass_cv_.notify_one();
}

void ClusterNode::Passes() {
  pthread_setname_np(pthread_self(), "sluice-reconcil");  // 15 characters at most
  std::unique_lock<std::mutex> lock(pass_mu_);
  while (true) {
    pass_cv_.wait(lock, [this] { return pass_wanted_ || passes_stop_; });
    if (passes_stop_) return;
    pass_wanted_ = false;
    lock.unlock();
    auto published = reconciler_->RunOnce();
    if (!published.ok()) {
      spdlog::warn("reconciler: {}", published.status().message());
    }
    lock.lock();
  }
}

void ClusterNode::AppendMetrics(Exposition* x) const {
  auto stats = broker_->Stats();
  x->Family("sluice_broker_up", "gauge", "1 while the cluster's Redis answers.");
  x->Sample("sluice_broker_up", {}, stats.ok() ? 1 : 0);
  if (stats.ok()) {
    x->Family("sluice_broker_stream_entries", "gauge",
              "Tickets a stream holds (waiting and handed out), by queue/kind, class and shard.");
    auto labels = [](const StreamStats& s) {
      return Labels{
          {"queue", s.queue}, {"class", s.high ? "hi" : "lo"}, {"shard", std::to_string(s.shard)}};
    };
    for (const StreamStats& s : *stats) {
      x->Sample("sluice_broker_stream_entries", labels(s), static_cast<double>(s.length));
    }
    x->Family("sluice_broker_stream_pending", "gauge",
              "Tickets handed out and not acknowledged (their jobs run).");
    for (const StreamStats& s : *stats) {
      x->Sample("sluice_broker_stream_pending", labels(s), static_cast<double>(s.pending));
    }
    x->Family("sluice_broker_stream_consumers", "gauge",
              "Consumers (processes) known to a stream's consumer group.");
    for (const StreamStats& s : *stats) {
      x->Sample("sluice_broker_stream_consumers", labels(s), static_cast<double>(s.consumers));
    }
    x->Family("sluice_broker_oldest_pending_seconds", "gauge",
              "Idle time of the oldest ticket handed out (its holder's last renewal).");
    for (const StreamStats& s : *stats) {
      x->Sample("sluice_broker_oldest_pending_seconds", labels(s), s.oldest_pending_ms / 1e3);
    }
  }
  x->Family("sluice_broker_dead_letters", "gauge", "Tickets in the dead-letter streams.");
  x->Sample("sluice_broker_dead_letters", {}, static_cast<double>(broker_->DeadCount()));
  BrokerCounters bc = broker_->counters();
  x->Family("sluice_broker_reclaims_total", "counter",
            "Tickets this process took over from a consumer whose lease lapsed.");
  x->Sample("sluice_broker_reclaims_total", {}, static_cast<double>(bc.reclaims));
  x->Family("sluice_broker_push_failures_total", "counter",
            "Tickets Redis did not take (the reconciler publishes them again).");
  x->Sample("sluice_broker_push_failures_total", {}, static_cast<double>(bc.push_failures));
  x->Family("sluice_reconciler_published_total", "counter",
            "Waiting jobs this process published again because the broker did not hold them.");
  x->Sample("sluice_reconciler_published_total", {}, static_cast<double>(reconciler_->published()));
  if (!worker_) return;
  const ClusterWorkerCounters& c = worker_->counters();
  x->Family("sluice_cluster_jobs_total", "counter",
            "HTTP jobs this process's cluster workers ended, by outcome.");
  x->Sample("sluice_cluster_jobs_total", {{"outcome", "succeeded"}},
            static_cast<double>(c.succeeded.load()));
  x->Sample("sluice_cluster_jobs_total", {{"outcome", "failed"}},
            static_cast<double>(c.failed.load()));
  x->Sample("sluice_cluster_jobs_total", {{"outcome", "dead_letter"}},
            static_cast<double>(c.dead_letters.load()));
  x->Family("sluice_cluster_fenced_total", "counter",
            "Results dropped because their claim had been taken over by another worker.");
  x->Sample("sluice_cluster_fenced_total", {}, static_cast<double>(c.fenced.load()));
  x->Family("sluice_cluster_jobs_in_hand", "gauge", "Jobs this process's workers hold now.");
  x->Sample("sluice_cluster_jobs_in_hand", {}, static_cast<double>(worker_->InHand()));
}

void ClusterNode::RequestStop() {
  if (worker_) worker_->RequestStop();
  if (broker_) broker_->Close();
}

void ClusterNode::Wait() {
  if (worker_) worker_->Wait();
  {
    std::lock_guard<std::mutex> lock(pass_mu_);
    passes_stop_ = true;
    pass_cv_.notify_one();
  }
  if (passes_.joinable()) passes_.join();
}

}  // namespace sluice::cli
