// ClusterNode: the broker, the cluster's workers and the reconciler of one process.
#include "cli/cluster.h"

#include <spdlog/spdlog.h>

namespace sluice::cli {

namespace {
constexpr char kReconcilerLease[] = "reconciler";
}  // namespace

Result<std::unique_ptr<ClusterNode>> ClusterNode::Open(const ServeFlags& f, Store* store,
                                                       Ownership* ownership,
                                                       std::set<std::string> kinds) {
  if (!store->Shared() || ownership == nullptr) {
    return Status::InvalidArgument(
        "--broker needs a database every process of the cluster shares (--database "
        "postgresql://…): a SQLite file belongs to one process, so there is no one to share "
        "the work with");
  }
  auto node = std::unique_ptr<ClusterNode>(new ClusterNode());
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
  worker_ = std::make_unique<ClusterWorker>(options, store_, broker_.get(), std::move(handlers),
                                            Env::Default(), Clock::Real(), commit_order);
  return worker_->Start();
}

void ClusterNode::Tick() {
  int64_t mono = Clock::Real()->MonotonicMicros();
  if (last_pass_ != 0 && mono - last_pass_ < static_cast<int64_t>(interval_s_ * 1e6)) return;
  last_pass_ = mono;
  auto held = ownership_->TryAcquire({kReconcilerLease});
  if (!held.ok() || !*held) return;
  auto published = reconciler_->RunOnce();
  if (!published.ok()) {
    spdlog::warn("reconciler: {}", published.status().message());
  }
}

void ClusterNode::RequestStop() {
  if (worker_) worker_->RequestStop();
  if (broker_) broker_->Close();
}

void ClusterNode::Wait() {
  if (worker_) worker_->Wait();
}

}  // namespace sluice::cli
