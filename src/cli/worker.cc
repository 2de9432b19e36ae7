// `sluice worker`: one process of a cluster that runs HTTP jobs only (cli/cluster.h).
#include <curl/curl.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <set>

#include "cli/children.h"
#include "cli/cluster.h"
#include "cli/commands.h"
#include "cli/serve.h"
#include "cli/spools.h"
#include "core/identity.h"
#include "core/spdlog.h"
#include "engine/ownership.h"
#include "store/store.h"

namespace sluice::cli {

namespace {

// The handlers a worker runs: one per kind of its config's [spool.NAME] sections, or the one
// of --kind (kcidb by default).
Result<std::vector<std::unique_ptr<Handler>>> WorkerHandlers(ServeFlags& f, Store* store) {
  std::vector<std::unique_ptr<Handler>> out;
  std::vector<ServeFlags> kinds;
  if (!f.spools_config.empty() || !f.engine.spool_dir.empty()) {
    auto specs = SpoolSpecs(f);
    if (!specs.ok()) return specs.status();
    for (SpoolSpec& spec : *specs) kinds.push_back(std::move(spec.flags));
  } else {
    kinds.push_back(f);
  }
  std::set<std::string> seen;
  for (ServeFlags& k : kinds) {
    if (!seen.insert(k.kind).second) continue;
    auto h = MakeHandler(k, store, nullptr);
    if (!h.ok()) return h.status();
    out.push_back(std::move(*h));
  }
  return out;
}

}  // namespace

int RunWorker(ServeFlags f) {
  sigset_t set = BlockDaemonSignals();
  Status st = ConfigureLogging(f.log);
  if (!st.ok()) return ExitCode(st);
  SetMaxJsonDepth(f.max_json_depth);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (f.broker.empty()) {
    return ExitCode(Status::InvalidArgument(
        "sluice worker needs --broker redis://HOST:PORT/DB (the cluster's Redis)"));
  }
  // Refused before anything is opened (or created).
  if (!IsPostgresUrl(f.database)) {
    return ExitCode(Status::InvalidArgument(
        "sluice worker needs the cluster's database (--database postgresql://…): a SQLite "
        "file belongs to one process, so there is no one to share the work with"));
  }
  auto store = OpenStore(f.database, f.store);
  if (!store.ok()) return ExitCode(store.status());
  st = PrepareChildren(store->get(), "worker", f.pass_env);
  if (!st.ok()) return ExitCode(st);
  Ownership ownership(store->get(), Clock::Real(), UniqueProcessName(), f.lease_s);
  auto alive = ownership.TryAcquire({});
  if (!alive.ok()) return ExitCode(alive.status());
  auto handlers = WorkerHandlers(f, store->get());
  if (!handlers.ok()) return ExitCode(handlers.status());
  std::map<std::string, Handler*> by_kind;
  std::set<std::string> kinds;
  for (const auto& h : *handlers) {
    by_kind.emplace(h->kind(), h.get());
    kinds.emplace(h->kind());
  }
  auto node = ClusterNode::Open(f, store->get(), &ownership, kinds);
  if (!node.ok()) return ExitCode(node.status());
  // Old events are pruned by one process of the cluster (the "pruner" lease).
  std::atomic<bool> pruner{false};
  f.engine.retention.pruner = &pruner;
  ClusterWorkerOptions options = ClusterOptionsOf(f);
  options.burst = f.engine.burst;
  st = (*node)->StartWorkers(std::move(by_kind), options, nullptr);
  if (!st.ok()) return ExitCode(st);
  spdlog::info("worker {}: {} workers, database {}", ownership.owner(), options.max_workers,
               DescribeStore(f.database, f.store));
  int64_t last_take = 0;  // monotonic micros
  while (!(*node)->Done()) {
    Status own = ownership.Renew();
    if (!own.ok()) {
      // Its claims may be another's now: the fence drops its late results anyway; stop.
      spdlog::critical("{}: stopping at once", own.message());
      spdlog::default_logger()->flush();
      std::_Exit(75);
    }
    (*node)->Tick();
    int64_t mono = Clock::Real()->MonotonicMicros();
    pruner = ownership.Holds(Ownership::kPrunerLease);  // given up when taken over
    if (!pruner.load() && mono - last_take >= 1'000'000) {
      last_take = mono;
      pruner = ownership.TryTake(Ownership::kPrunerLease);
    }
    struct timespec ts = {0, 200 * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("{}: finishing the jobs in hand, then stopping", strsignal(sig));
      (*node)->RequestStop();
    } else if (sig == SIGHUP) {
      Status rs = ReopenLogFile();
      if (!rs.ok()) spdlog::error("reopening the log file: {}", rs.ToString());
      for (const auto& h : *handlers) (void)h->Reload();
    }
  }
  (*node)->Wait();
  ownership.Release();
  const ClusterWorkerCounters& c = (*node)->worker()->counters();
  spdlog::info(
      "stopped after {} jobs ({} succeeded, {} failed, {} dead letters, {} retries, {} "
      "results dropped by the fence)",
      c.succeeded + c.failed, c.succeeded.load(), c.failed.load(), c.dead_letters.load(),
      c.retried.load(), c.fenced.load());
  spdlog::default_logger()->flush();
  // Results given up at the stop: their tickets were not acknowledged, so the jobs are
  // handed out again.
  if (!(*node)->worker()->Abandoned().ok()) return 1;
  return 0;
}

}  // namespace sluice::cli
