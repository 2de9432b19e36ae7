// `sluice command-runner` (Mozilla's command_runner, flag for flag) and `sluice retry-dead`.
#include <signal.h>

#include <cstdio>

#include "cli/check.h"
#include "cli/children.h"
#include "cli/commands.h"
#include "cli/daemon_lock.h"
#include "cli/queuedir_commands.h"
#include "core/identity.h"
#include "core/json.h"
#include "core/spdlog.h"
#include "core/text.h"
#include "engine/ownership.h"
#include "engine/queuedir_runner.h"
#include "engine/retention.h"
#include "handlers/exec/exec_handler.h"

namespace sluice::cli {
namespace {

// How long the pruner lease lasts when held by a command-runner (serve's --lease default).
constexpr double kPrunerLeaseSeconds = 15;

}  // namespace

int RunCommandRunner(const CommandRunnerFlags& f) {
  // Before any thread starts (the log flusher is the first): see RunServe.
  sigset_t set = BlockDaemonSignals();
  Status st = ConfigureLogging(f.log);
  if (!st.ok()) return ExitCode(st);
  SetMaxJsonDepth(f.max_json_depth);
  std::string database = f.database.empty() ? "sqlite:" + f.queuedir + "/sluice.db" : f.database;
  QueueDir probe(Env::Default(), f.queuedir);
  st = probe.Prepare();
  if (!st.ok()) return ExitCode(st);
  auto store = OpenStore(database, f.store);
  if (!store.ok()) return ExitCode(store.status());
  // One runner per queuedir: another would take this one's items in cur/ for leftovers.
  st = LockForDaemon(database, {probe.root()});
  if (!st.ok()) return ExitCode(st);
  st = PrepareChildren(store->get(), "command-runner " + probe.root(), f.pass_env);
  if (!st.ok()) return ExitCode(st);
  ExecOptions eo;
  eo.max_time_s = f.max_time_s;
  eo.grace_s = f.grace_s;
  eo.allowed_commands = f.allowed_commands;
  eo.allowed_env = f.allowed_env;
  ExecHandler handler(eo);
  QueuedirOptions qo;
  qo.dir = f.queuedir;
  qo.workers = f.concurrency;
  qo.max_retries = f.max_retries;
  qo.retry_time_s = f.retry_time_s;
  qo.dir_lock = Folders::Lock::kExclusive;

  QueuedirRunner runner(qo, store->get(), &handler, Env::Default(), Clock::Real());
  st = runner.Start();
  if (!st.ok()) return ExitCode(st);
  spdlog::info(
      "command-runner: {} with {} at a time, {} retries {}s apart, max time {}s; "
      "database {}",
      runner.root(), f.concurrency, f.max_retries, f.retry_time_s, f.max_time_s,
      DescribeStore(database, f.store));
  std::string heartbeat_key = HeartbeatKey(runner.root());
  // What is past the retention: pruned here on a database of its own; on one several
  // processes share, by the one holding the "pruner" lease (as among serve's daemons).
  std::atomic<bool> pruner{true};
  std::unique_ptr<Ownership> ownership;
  if ((*store)->Shared()) {
    ownership = std::make_unique<Ownership>(store->get(), Clock::Real(), UniqueProcessName(),
                                            kPrunerLeaseSeconds);
    pruner = ownership->TryTake(Ownership::kPrunerLease);
  }
  RetentionOptions retention_options = f.retention;
  retention_options.pruner = &pruner;
  Retention retention(store->get(), Env::Default(), Clock::Real(), retention_options);
  int64_t next_prune = 0;
  int64_t last_take = Clock::Real()->MonotonicMicros();
  int64_t last_beat = 0;
  while (true) {
    int64_t mono = Clock::Real()->MonotonicMicros();
    if (ownership) {
      // Only a role is held here (no spool): one taken over is given up, not a reason to stop.
      Status own = ownership->Renew();
      if (!own.ok()) spdlog::warn("{}", own.message());
      pruner = ownership->Holds(Ownership::kPrunerLease);
      if (!pruner.load() && mono - last_take >= 1'000'000) {
        last_take = mono;
        pruner = ownership->TryTake(Ownership::kPrunerLease);
      }
    }
    if (mono >= next_prune) next_prune = mono + retention.MaybePrune(false);
    if (mono - last_beat >= 5'000'000) {
      last_beat = mono;
      (void)(*store)->PutValue(kHeartbeatNs, heartbeat_key,
                               std::to_string(Clock::Real()->NowMicros()));
    }
    struct timespec ts = {0, 200 * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGHUP) (void)ReopenLogFile();
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("{}: letting running commands finish, then stopping", strsignal(sig));
      break;
    }
  }
  runner.Stop();
  if (ownership) ownership->Release();  // another process prunes at once
  const QueuedirCounters& c = runner.counters();
  spdlog::info("stopped: {} succeeded, {} retried, {} dead", c.succeeded.load(), c.retried.load(),
               c.dead.load());
  return 0;
}

int RunRetryDead(const std::string& queuedir) {
  QueueDir dir(Env::Default(), queuedir);
  if (Status st = dir.Prepare(); !st.ok()) return ExitCode(st);
  auto moved = dir.RetryDead();
  if (!moved.ok()) return ExitCode(moved.status());
  for (const std::string& item : *moved) std::printf("%s\n", PrintableLine(item).c_str());
  std::fprintf(stderr, "%zu dead items back in %s/new\n", moved->size(), dir.root().c_str());
  return 0;
}

}  // namespace sluice::cli
