// `sluice command-runner` (Mozilla's command_runner, flag for flag) and `sluice retry-dead`.
#include <signal.h>

#include <cstdio>

#include "cli/check.h"
#include "cli/children.h"
#include "cli/commands.h"
#include "cli/daemon_lock.h"
#include "cli/queuedir_commands.h"
#include "core/json.h"
#include "core/spdlog.h"
#include "core/text.h"
#include "engine/queuedir_runner.h"
#include "engine/retention.h"
#include "handlers/exec/exec_handler.h"

namespace sluice::cli {

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
  st = LockForDaemon(database, {probe.root()}, false);
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
  // What is past the retention: pruned here on a database of its own; on one daemons share,
  // by the daemon holding the "pruner" lease.
  std::unique_ptr<Retention> retention;
  if (!(*store)->Shared()) {
    retention =
        std::make_unique<Retention>(store->get(), Env::Default(), Clock::Real(), f.retention);
  }
  int64_t last_beat = 0;
  int64_t next_prune = 0;
  while (true) {
    int64_t mono = Clock::Real()->MonotonicMicros();
    if (retention && mono >= next_prune) next_prune = mono + retention->MaybePrune(false);
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
