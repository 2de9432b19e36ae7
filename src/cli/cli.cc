// Command dispatch: flags for every command, config files, and the one Status → exit code map.
#include <spdlog/sinks/stdout_color_sinks.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "cli/check.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/inspect.h"
#include "cli/migrate.h"
#include "cli/queuedir_commands.h"
#include "cli/remote.h"
#include "cli/secrets.h"
#include "cli/serve.h"
#include "core/env.h"
#include "core/spdlog.h"
#include "core/text.h"
#include "handlers/kcidb/demo.h"

namespace sluice::cli {

int ExitCode(const Status& st) {
  if (st.ok()) return 0;
  std::fprintf(stderr, "sluice: %s\n", PrintableLine(st.ToString()).c_str());
  switch (st.code()) {
    case Code::kInvalidArgument:
    case Code::kFailedPrecondition:
      return 2;
    case Code::kNotFound:
      return 3;
    default:
      return 1;
  }
}

sigset_t BlockDaemonSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  // Taken and dropped: a stray one (an operator's habit from daemons that reopen logs on it)
  // would otherwise end the daemon, its default action.
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A write to a peer that went away (a database or broker connection cut by a restart) is an
  // error for the caller to handle, not the end of the daemon. Commands it runs get SIGPIPE's
  // default back (spawn resets it).
  signal(SIGPIPE, SIG_IGN);
  return set;
}

namespace {

// Replaces "-c FILE" / "--config FILE" / "--config=FILE" by the file's flags, placed right after
// the command name so that flags given on the command line win.
Result<std::vector<std::string>> ExpandConfig(int argc, char** argv,
                                              std::map<std::string, std::string>* origins) {
  std::vector<std::string> args(argv, argv + argc);
  if (args.size() > 1 && args[1] == "check") return args;  // there -c is Nagios' critical
  for (size_t i = 1; i < args.size(); ++i) {
    std::string file;
    size_t erase = 0;
    if ((args[i] == "-c" || args[i] == "--config") && i + 1 < args.size()) {
      file = args[i + 1];
      erase = 2;
    } else if (args[i].rfind("--config=", 0) == 0) {
      file = args[i].substr(9);
      erase = 1;
    }
    if (erase == 0) continue;
    auto extra = ConfigFileArgs(file, origins);
    if (!extra.ok()) return extra.status();
    args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i + erase));
    size_t at = args.size() > 1 ? 2 : 1;  // after the command name
    args.insert(args.begin() + static_cast<long>(at), extra->begin(), extra->end());
    break;
  }
  return args;
}

// A parse error about a flag that came from a config file, with the file and line it is on.
std::string WithOrigin(const std::string& message,
                       const std::map<std::string, std::string>& origins) {
  for (const auto& [arg, where] : origins) {
    std::string flag = arg.substr(0, arg.find('='));
    if (message.find(arg) != std::string::npos || message.find(flag + ":") != std::string::npos ||
        message.find(flag + " ") != std::string::npos ||
        (message.size() >= flag.size() &&
         message.compare(message.size() - flag.size(), flag.size(), flag) == 0)) {
      return where + ": " + message;
    }
  }
  return message;
}

}  // namespace

int Main(int argc, char** argv) {
  // Until a command sets up its own logging (serve, command-runner), log lines go to stderr:
  // stdout is the command's answer (`sluice jobs --json | jq`).
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "", std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
  std::map<std::string, std::string> origins;
  auto expanded = ExpandConfig(argc, argv, &origins);
  if (!expanded.ok()) return ExitCode(expanded.status());
  std::vector<std::string> args = std::move(*expanded);

  CLI::App app{"sluice: a durable spool-directory and job-queue daemon"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice " SLUICE_VERSION);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string config_unused;
  auto add_config = [&](CLI::App* sub) {
    sub->add_option("-c,--config", config_unused,
                    "ini/toml file with flags (the command line wins)");
  };

  ServeFlags serve_flags;
  CLI::App* serve = app.add_subcommand("serve", "Watch a spool and ingest what lands in it");
  AddServeFlags(serve, &serve_flags, false);
  serve
      ->add_option("--cluster-queue", serve_flags.queues,
                   "With --broker: a queue whose jobs and task runs this daemon's workers take "
                   "(repeat it; default: all)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  add_config(serve);

  ServeFlags worker_flags;
  bool worker_debug = false;
  CLI::App* worker = app.add_subcommand(
      "worker", "Run the HTTP jobs a cluster's broker hands out (Arthur's arthurw, flag for flag)");
  AddServeFlags(worker, &worker_flags, false);
  // Taken (a config file shared with `serve` may set them) but not shown: a worker has no
  // API and watches no spool.
  for (const char* name : {"--no-api",
                           "--host",
                           "--port",
                           "--api-token",
                           "--api-token-file",
                           "--insecure",
                           "--max-body-memory",
                           "--max-body-bytes",
                           "--http-timeout",
                           "--sse-buffer",
                           "--max-sse-clients",
                           "--sse-keepalive",
                           "--spool-dir",
                           "--interval",
                           "--settle",
                           "--max-backlog",
                           "--max-api-jobs",
                           "--max-api-bytes",
                           "--progress-interval",
                           "--no-archive",
                           "--layout",
                           "--name"}) {
    if (CLI::Option* o = worker->get_option_no_throw(name)) o->group("");
  }
  add_config(worker);
  std::string worker_d;
  worker->add_option("-d", worker_d,
                     "The cluster's database (as --database); a redis:// URL here is the "
                     "broker, as arthurw's -d is");
  worker->add_flag("-b", worker_flags.engine.burst, "As --burst (arthurw's -b)");
  worker->add_flag("-g,--debug", worker_debug, "Debug logging on stderr");
  worker->add_option("queues", worker_flags.queues, "Queues to serve (default: all)");

  ServeFlags mon_flags;
  CLI::App* mon =
      app.add_subcommand("monitor-submissions",
                         "KernelCI's monitor_submissions, flag for flag (STORAGE_TOKEN, "
                         "STORAGE_BASE_URL from the environment)");
  AddServeFlags(mon, &mon_flags, true);
  add_config(mon);

  JobsFlags jobs_flags;
  CLI::App* jobs = app.add_subcommand("jobs", "List jobs, newest first");
  StoreOptions store_opts;  // --pg-schema of whichever command runs
  auto add_pg_schema = [&](CLI::App* sub) {
    sub->add_option("--pg-schema", store_opts.pg_schema,
                    "PostgreSQL: the schema of Sluice's own tables")
        ->capture_default_str();
  };
  jobs->add_option("--database", jobs_flags.database, "Store URL")->capture_default_str();
  add_pg_schema(jobs);
  jobs->add_option("--state", jobs_flags.state,
                   "queued, running, retrying, succeeded, failed or cancelled");
  jobs->add_option("--limit", jobs_flags.limit, "At most this many")->capture_default_str();
  jobs->add_flag("--json", jobs_flags.json, "JSON instead of a table");

  std::string show_db = "sqlite:sluice.db", show_what;
  CLI::App* show = app.add_subcommand("show", "One job in full (by id or file name), as JSON");
  show->add_option("--database", show_db, "Store URL")->capture_default_str();
  add_pg_schema(show);
  show->add_option("job", show_what, "Job id or spool file name")->required();

  std::string stats_db = "sqlite:sluice.db";
  CLI::App* stats = app.add_subcommand("stats", "Jobs by state and objects stored");
  stats->add_option("--database", stats_db, "Store URL")->capture_default_str();
  add_pg_schema(stats);

  std::string retry_spool, retry_name, retry_db;
  bool retry_all = false;
  CLI::App* retry = app.add_subcommand("retry", "Move failed files back into the spool");
  retry->add_option("--spool-dir", retry_spool, "Spool directory")->required();
  retry->add_option("name", retry_name, "File name in failed/");
  retry->add_flag("--all-failed", retry_all, "Every file in failed/");
  retry->add_option(
      "--database", retry_db,
      "Store URL: also mark the failed jobs retried there (out of the failure counts)");
  add_pg_schema(retry);

  RemoteFlags remote;
  auto add_remote = [&](CLI::App* sub) {
    sub->add_option("--api", remote.api, "The daemon's API")->capture_default_str();
    sub->add_option("--api-token", remote.token, "Its bearer token (or SLUICE_API_TOKEN)");
    sub->add_option("--api-token-file", remote.token_file, "A file holding its bearer token");
  };
  std::string priority_what;
  CLI::App* priority = app.add_subcommand(
      "priority", "Run a job, spool file or deferred file next (asks the running daemon)");
  priority->add_option("what", priority_what, "Job id or file name")->required();
  add_remote(priority);
  std::string promote_name;
  bool promote_all = false;
  CLI::App* promote =
      app.add_subcommand("promote", "Move deferred files into the spool (asks the running daemon)");
  promote->add_option("name", promote_name, "File name in deferred/");
  promote->add_flag("--all", promote_all, "Every deferred file");
  add_remote(promote);

  SubmitFlags submit_flags;
  int submit_priority = 0, submit_max_attempts = 0;
  CLI::App* submit = app.add_subcommand(
      "submit", "Submit a job: its payload a JSON file or stdin (asks the running daemon)");
  submit->add_option("input", submit_flags.input, "The payload's JSON file, or - for stdin")
      ->required();
  submit->add_option("--kind", submit_flags.kind, "Handler: kcidb, exec, publish, ...")
      ->capture_default_str();
  submit->add_option("--queue", submit_flags.queue, "Queue (default: the daemon's)");
  CLI::Option* submit_priority_opt = submit->add_option(
      "--priority", submit_priority, "Higher runs first (a queued job's default is 0)");
  CLI::Option* submit_attempts_opt = submit->add_option(
      "--max-attempts", submit_max_attempts, "Tries before it fails (default: the daemon's)");
  submit->add_option("--run-at", submit_flags.run_at, "Not before this RFC 3339 time");
  submit->add_option("--idempotency-key", submit_flags.idempotency_key,
                     "Submitted again with the same key: the first job is answered");
  submit->add_flag("--wait", submit_flags.wait,
                   "Wait until the job ends and print it: exit 0 when it succeeded, 1 otherwise");
  submit->add_option("--timeout", submit_flags.timeout_s, "With --wait: give up after SECONDS")
      ->check(Seconds(true));
  add_remote(submit);
  std::string cancel_id;
  CLI::App* cancel = app.add_subcommand(
      "cancel", "End a queued or retrying job as cancelled (asks the running daemon)");
  cancel->add_option("id", cancel_id, "Job id")->required();
  add_remote(cancel);

  std::string tasks_action;
  std::vector<std::string> tasks_args;
  bool tasks_json = false;
  CLI::App* tasks_cmd = app.add_subcommand(
      "tasks",
      "Recurring tasks (King Arthur's API): add FILE|-, remove ID..., reschedule ID..., list, "
      "show ID, job JOB_ID (asks the running daemon)");
  tasks_cmd->add_option("action", tasks_action, "add, remove, reschedule, list, show or job")
      ->required()
      ->check(CLI::IsMember({"add", "remove", "reschedule", "list", "show", "job"}));
  tasks_cmd->add_option("args", tasks_args, "FILE (- for stdin) or task ids");
  tasks_cmd->add_flag("--json", tasks_json, "list: the daemon's JSON instead of a table");
  add_remote(tasks_cmd);

  CommandRunnerFlags cr;
  CLI::App* cr_cmd = app.add_subcommand(
      "command-runner",
      "Mozilla's command_runner on a queuedir (tmp/ new/ cur/ logs/ dead/): each item a JSON "
      "argv list or {argv, env, cwd, max_time}");
  // command_runner.py's flags, spellings and defaults; the dashed spellings too.
  cr_cmd->add_option("queuedir", cr.queuedir, "The queuedir (or -q)");
  cr_cmd->add_option("-q,--queuedir", cr.queuedir_flag, "The queuedir");
  cr_cmd->add_option("-j,--jobs,--concurrency", cr.concurrency, "Commands at a time")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cr_cmd
      ->add_option("-r,--max_retries,--max-retries", cr.max_retries,
                   "Retries before an item goes to dead/")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cr_cmd
      ->add_option("-t,--retry_time,--retry-time", cr.retry_time_s,
                   "Seconds before a failed item runs again (it waits in cur/)")
      ->check(Seconds(true))
      ->capture_default_str();
  cr_cmd
      ->add_option("-m,--max_time,--max-time", cr.max_time_s,
                   "Seconds a command may run (0: no limit)")
      ->check(Seconds(true))
      ->capture_default_str();
  cr_cmd->add_flag("-v,--verbose", cr.verbosity, "More logging (-v info, -vv debug)");
  cr_cmd->add_option("-l,--logfile,--log-file", cr.log.file,
                     "Log to this rotating file (1 MiB, 5 kept) instead of stderr");
  cr_cmd->add_option("--kill-grace", cr.grace_s, "Seconds between SIGINT, SIGTERM and SIGKILL")
      ->check(Seconds(true))
      ->capture_default_str();
  cr_cmd
      ->add_option("--allowed-commands", cr.allowed_commands,
                   "Globs the resolved argv[0] must match ('*' stops at '/')")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cr_cmd
      ->add_option("--allowed-env", cr.allowed_env,
                   "Globs of variable names an item's env may set (none by default)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cr_cmd
      ->add_option("--pass-env", cr.pass_env,
                   "Variables commands get from the daemon's environment beyond the few")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cr_cmd->add_option("--database", cr.database, "Store URL (default sqlite:QUEUEDIR/sluice.db)");
  add_pg_schema(cr_cmd);
  AddRetentionFlags(cr_cmd, &cr.retention);
  cr_cmd->add_option("--max-json-depth", cr.max_json_depth, "Items nested deeper are refused")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cr_cmd->add_option("--stderr-level", cr.log.stderr_level,
                     "Level of stderr logging (default: by -v, warning without)");

  std::string retry_dead_dir;
  CLI::App* retry_dead = app.add_subcommand(
      "retry-dead", "Move a queuedir's dead items back into new/ (dropping their logs)");
  retry_dead->add_option("queuedir", retry_dead_dir, "The queuedir")->required();

  CheckFlags check_flags;
  CLI::App* check = app.add_subcommand(
      "check", "Nagios plugin: one line and exit 0/1/2/3 for a spool (works with the daemon down)");
  check->add_option("--spool-dir", check_flags.spool_dir, "The spool (or queuedir)");
  check->add_option("queuedirs", check_flags.queuedirs,
                    "Queuedirs, checked as check_queuedir.py checks them (no database needed)");
  check->add_flag("--perfdata", check_flags.perfdata, "Queuedirs: add perfdata to the line");
  check->add_option("--config", check_flags.config,
                    "The daemon's config file (with --spool or --all)");
  check->add_option("--spool", check_flags.spool_name, "A [spool.NAME] of --config");
  check->add_option("--broker", check_flags.broker,
                    "A cluster's Redis: dead letters CRITICAL, a job held past -t WARNING");
  check->add_option("--broker-prefix", check_flags.broker_prefix, "Its keys' prefix")
      ->capture_default_str();
  check->add_flag("--all", check_flags.all, "Every spool of --config, in one line");
  add_pg_schema(check);
  check->add_option("--database", check_flags.database,
                    "Store URL (default sqlite:sluice.db; a queuedir's: sqlite:DIR/sluice.db)");
  check->add_option("-w,--warn", check_flags.warn_pending, "Pending files for WARNING")
      ->capture_default_str();
  check->add_option("-c,--crit", check_flags.crit_pending, "Pending files for CRITICAL")
      ->capture_default_str();
  check->add_option("--warn-cur", check_flags.warn_cur, "Jobs in progress for WARNING")
      ->capture_default_str();
  check->add_option("--crit-cur", check_flags.crit_cur, "Jobs in progress for CRITICAL")
      ->capture_default_str();
  check
      ->add_option("-t,--max-age", check_flags.max_age_s,
                   "WARNING when the oldest pending file is older (seconds)")
      ->check(Seconds(true))
      ->capture_default_str();
  check
      ->add_option("--heartbeat-age", check_flags.heartbeat_age_s,
                   "CRITICAL when the daemon's last heartbeat is older (seconds)")
      ->check(Seconds(true))
      ->capture_default_str();

  std::string migrate_db = "sqlite:sluice.db";
  bool migrate_check = false;
  CLI::App* migrate = app.add_subcommand(
      "migrate",
      "Bring the database's schema up to this sluice's version (the daemon does it "
      "on start too)");
  migrate->add_option("--database", migrate_db, "Store URL")->capture_default_str();
  add_pg_schema(migrate);
  migrate->add_flag("--check", migrate_check,
                    "Only say which migrations are missing (exit 1 when some are)");

  std::string ms_from, ms_to;
  bool ms_append = false;
  CLI::App* migrate_store =
      app.add_subcommand("migrate-store",
                         "Copy a SQLite store (jobs, events, tasks, runs, items, key-value map, "
                         "KCIDB rows) into PostgreSQL; resumable");
  migrate_store->add_option("--from", ms_from, "sqlite:PATH")->required();
  migrate_store->add_option("--to", ms_to, "A PostgreSQL URL or key=value string")->required();
  migrate_store->add_flag("--append", ms_append, "Add to a target that holds data of its own");
  int ms_chunk = 2000;
  migrate_store->add_option("--chunk", ms_chunk, "Rows per transaction")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  add_pg_schema(migrate_store);

  std::string demo_dir;
  kcidb::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand("demo-data", "Write demo KCIDB submissions");
  demo_cmd->add_option("dir", demo_dir, "Directory to fill")->required();
  demo_cmd->add_option("--count", demo.count, "Files to write")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  demo_cmd->add_option("--tests-per-file", demo.tests_per_file, "Tests per file")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  demo_cmd
      ->add_option("--bad-fraction", demo.bad_fraction, "Share of deliberately broken files (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  demo_cmd->add_flag("--minimal", demo.minimal, "One test per file and nothing else");
  demo_cmd->add_option("--seed", demo.seed, "Random seed")->capture_default_str();

  std::vector<const char*> cargv;
  for (const std::string& a : args) cargv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargv.size()), const_cast<char**>(cargv.data()));
  } catch (const CLI::ParseError& e) {
    std::string where = WithOrigin(e.what(), origins);
    if (e.get_exit_code() != 0 && where != e.what()) {
      std::fprintf(stderr, "sluice: %s\n", where.c_str());
      return 2;
    }
    return app.exit(e) == 0 ? 0 : 2;
  }
  ScrubSecretArgs(argc, argv);  // parsed (copied): no longer shown by ps

  if (serve->parsed()) return RunServe(serve_flags);
  if (mon->parsed()) return RunServe(mon_flags);
  if (worker->parsed()) {
    if (worker_debug) worker_flags.log.stderr_level = "debug";
    // arthurw's -d is its Redis: taken as the broker; anything else is the database.
    bool redis = worker_d.rfind("redis://", 0) == 0 || worker_d.rfind("rediss://", 0) == 0 ||
                 worker_d.rfind("redis+sentinel://", 0) == 0 || worker_d.rfind("unix://", 0) == 0;
    if (redis && !worker_flags.broker.empty() && worker_flags.broker != worker_d) {
      return ExitCode(Status::InvalidArgument(
          "-d names a Redis and --broker another: give the Redis once, and the cluster's "
          "PostgreSQL with --database"));
    }
    if (redis) {
      worker_flags.broker = worker_d;
    } else if (!worker_d.empty()) {
      worker_flags.database = worker_d;
    }
    return RunWorker(worker_flags);
  }
  jobs_flags.store = check_flags.store = cr.store = store_opts;
  if (jobs->parsed()) return RunJobs(jobs_flags);
  if (show->parsed()) return RunShow(show_db, store_opts, show_what);
  if (stats->parsed()) return RunStats(stats_db, store_opts);
  if (retry->parsed()) {
    if (!retry_name.empty() != retry_all) {
      return RunRetry(retry_spool, retry_name, retry_all, retry_db, store_opts);
    }
    return ExitCode(Status::InvalidArgument("give a NAME or --all-failed (not both)"));
  }
  if (submit->parsed()) {
    if (submit_priority_opt->count() > 0) submit_flags.priority = submit_priority;
    if (submit_attempts_opt->count() > 0) submit_flags.max_attempts = submit_max_attempts;
    return RunSubmit(remote, submit_flags);
  }
  if (cancel->parsed()) return RunCancel(remote, cancel_id);
  if (priority->parsed()) return RunPriority(remote, priority_what);
  if (promote->parsed()) return RunPromote(remote, promote_name, promote_all);
  if (check->parsed()) {
    check_flags.heartbeat_given = check->count("--heartbeat-age") > 0;
    return RunCheck(check_flags);
  }
  if (cr_cmd->parsed()) {
    if (cr.queuedir.empty()) cr.queuedir = cr.queuedir_flag;
    if (cr.queuedir.empty()) {
      return ExitCode(Status::InvalidArgument("-q/--queuedir is required"));
    }
    // command_runner.py's logging: warning, -v info, -vv debug; with -l a rotating file
    // (1 MiB, 5 kept) in its "time - message" format instead of stderr.
    std::string level = cr.verbosity == 0 ? "warning" : cr.verbosity == 1 ? "info" : "debug";
    bool stderr_given = cr_cmd->count("--stderr-level") > 0;
    if (!stderr_given) cr.log.stderr_level = cr.log.file.empty() ? level : "off";
    cr.log.file_level = level;
    cr.log.file_max_bytes = 1 << 20;
    cr.log.file_backups = 5;
    cr.log.file_pattern = "%Y-%m-%d %H:%M:%S,%e - %v";
    return RunCommandRunner(cr);
  }
  if (retry_dead->parsed()) return RunRetryDead(retry_dead_dir);
  if (migrate->parsed()) return RunMigrate(migrate_db, store_opts, migrate_check);
  if (migrate_store->parsed())
    return RunMigrateStore(ms_from, ms_to, store_opts, ms_append, ms_chunk);
  if (tasks_cmd->parsed()) return RunTasks(remote, tasks_action, tasks_args, tasks_json);
  if (demo_cmd->parsed()) {
    auto n = kcidb::WriteDemoSpool(Env::Default(), demo_dir, demo);
    if (!n.ok()) return ExitCode(n.status());
    std::printf("wrote %d submissions to %s\n", *n, demo_dir.c_str());
    return 0;
  }
  return 2;
}

}  // namespace sluice::cli
