// `sluice serve`: wiring of store, handler, engine and signals.
#include "cli/serve.h"

#include <curl/curl.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>

#include "api/event_streams.h"
#include "api/metrics_page.h"
#include "broker/redis/redis_items.h"
#include "cli/check.h"
#include "cli/children.h"
#include "cli/cluster.h"
#include "cli/commands.h"
#include "cli/daemon_lock.h"
#include "cli/flags.h"
#include "cli/secrets.h"
#include "cli/spools.h"
#include "core/identity.h"
#include "core/spdlog.h"
#include "engine/engine.h"
#include "engine/event_tail.h"
#include "engine/ownership.h"
#include "engine/task_runs.h"
#include "handlers/git/git_backend.h"
#include "handlers/kcidb/storage.h"
#include "spool/queuedir.h"
#include "store/store.h"

namespace sluice::cli {

namespace {
constexpr char kSchedulerLease[] = "scheduler";
}  // namespace

void AddServeFlags(CLI::App* app, ServeFlags* f, bool kernelci_only) {
  EngineOptions& e = f->engine;
  app->add_option("--spool-dir", e.spool_dir,
                  "Spool directory to watch (required unless the config has spool sections)");
  app->add_option("--max-workers", e.max_workers, "Worker threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app->add_option("--interval", e.interval_s, "Seconds between safety-net rescans")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--trees-file", f->trees_file,
                  "YAML trees file mapping repository URLs to tree names (default: shipped)");
  app->add_option("--database", f->database,
                  "Store URL: sqlite:PATH, or postgresql://USER@HOST:PORT/DB (a libpq URL or "
                  "key=value string; the password from PGPASSWORD or ~/.pgpass)")
      ->capture_default_str();
  app->add_option("--pg-schema", f->store.pg_schema,
                  "PostgreSQL: the schema of Sluice's own tables (KCIDB tables go where the "
                  "search_path says)")
      ->capture_default_str();
  app->add_option("--storage-token-file", f->storage_token_file,
                  "File holding the log storage service's token (instead of STORAGE_TOKEN)");
  app->add_option("--stderr-level", f->log.stderr_level, "Level of stderr logging")
      ->capture_default_str();
  app->add_option("--log-file", f->log.file, "Rotating log file (none by default)");
  app->add_option("--log-file-level", f->log.file_level, "Level of the log file")
      ->capture_default_str();
  app->add_option("--log-file-max-bytes", f->log.file_max_bytes, "Rotate the log file at")
      ->check(WholeNumber())
      ->check(CLI::Range(size_t{4096}, std::numeric_limits<size_t>::max()))
      ->capture_default_str();
  // spdlog's rotating sink keeps at most 200,000.
  app->add_option("--log-file-backups", f->log.file_backups, "Rotated log files kept")
      ->check(WholeNumber())
      ->check(CLI::Range(size_t{0}, size_t{200'000}))
      ->capture_default_str();
  app->add_option("--max-json-depth", f->max_json_depth,
                  "Job files and request bodies nested deeper are refused (invalid_job, 400)")
      ->check(CLI::Range(1, kMaxMaxJsonDepth))
      ->capture_default_str();
  if (kernelci_only) {
    f->no_api = true;  // KernelCI's command has no HTTP API
    return;
  }
  app->add_flag("--no-api", f->no_api, "Do not serve the HTTP API");
  app->add_option("--host", f->host, "Address the HTTP API listens on")->capture_default_str();
  app->add_option("--port", f->port, "Port of the HTTP API (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str()
      ->each([f](const std::string&) { f->port_given = true; });
  app->add_option("--api-token", f->api_token,
                  "Bearer token every API request but /healthz must carry (or SLUICE_API_TOKEN; "
                  "prefer --api-token-file)");
  app->add_option("--api-token-file", f->api_token_file,
                  "File holding the API's bearer token (its first line)");
  app->add_flag("--insecure", f->insecure, "Allow a non-loopback --host without a token");
  app->add_option("--max-body-memory", f->max_body_memory,
                  "Bytes of request bodies read at once across connections (503 beyond)")
      ->check(WholeNumber())
      ->capture_default_str();
  app->add_option("--max-body-bytes", f->max_body_bytes, "Largest request body (413 above)")
      ->check(WholeNumber())
      ->capture_default_str();
  app->add_option("--http-timeout", f->http_timeout_s,
                  "Seconds for a request to arrive; idle connections close after it")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--sse-buffer", f->sse_buffer,
                  "Events queued for a slow SSE reader before it gets 'event: lagged'")
      ->check(CLI::Range(size_t{1}, size_t{10'000'000}))
      ->capture_default_str();
  app->add_option("--max-sse-clients", f->max_sse_clients,
                  "Event streams (SSE and followed logs) open at once; more get 503")
      ->check(CLI::Range(size_t{1}, size_t{10'000'000}))
      ->capture_default_str();
  app->add_option("--sse-keepalive", f->sse_keepalive_s,
                  "Seconds of quiet before an SSE stream gets a keepalive comment")
      ->check(Seconds(false))
      ->capture_default_str();
  AddRetentionFlags(app, &e.retention);
  app->add_option("--spools-config", f->spools_config,
                  "Config file whose [spool.NAME] sections are the spools (set by -c)")
      ->group("");
  app->add_option("--name", f->name, "The spool's name (default: its directory's)");
  app->add_option("--layout", f->layout,
                  "spool (files in DIR, archive/, failed/) or queuedir (tmp/ new/ cur/ logs/ "
                  "dead/)")
      ->check(CLI::IsMember({"spool", "queuedir"}))
      ->capture_default_str();
  auto given = [f](const char* flag) {
    return [f, flag](const std::string&) { f->given.insert(flag); };
  };
  app->add_option("--max-retries", f->max_retries, "queuedir: retries before an item goes dead")
      ->each(given("max-retries"))
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app->add_option("--retry-time", f->retry_time_s, "queuedir: seconds between retries")
      ->each(given("retry-time"))
      ->check(Seconds(true))
      ->capture_default_str();
  app->add_option("--kind", f->kind,
                  "What the spool's files (and POSTed jobs) are: kcidb submissions, exec "
                  "commands, or publish event lists")
      ->check(CLI::IsMember({"kcidb", "exec", "publish"}))
      ->capture_default_str();
  app->add_option("--command", f->command_json,
                  "exec: one command for every job, as a JSON argv list; \"{json}\", "
                  "\"{dump}\" (a companion) and \"{file}\" become the job's file paths");
  app->add_option("--save-successful-to", e.save.successful,
                  "Succeeded files go to a dated folder (YYYYMMDD) of this directory, on the "
                  "spool's filesystem; \"\" deletes them (default: SPOOL/archive)");
  app->add_option("--save-failed-to", e.save.failed,
                  "Failed files (with their .error.json) go to a dated folder of this directory; "
                  "\"\" deletes them (default: SPOOL/failed)");
  app->add_option("--worker-lease", e.worker_lease_s,
                  "Seconds without a heartbeat from a job's worker before another worker runs "
                  "it (the lost try counts; 0: no leases)")
      ->check(Seconds(true))
      ->capture_default_str();
  app->add_option("--companions", e.companions,
                  "Suffixes of files a job needs beside x.json (\".dump\": x.dump); "
                  "comma-separated")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--pair-timeout", e.pair_timeout_s,
                  "Seconds a file waits for its companions before it fails")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--max-time", f->exec.max_time_s,
                  "exec: seconds a command may run (0: no limit; a job's max_time wins)")
      ->check(Seconds(true))
      ->capture_default_str();
  app->add_option("--kill-grace", f->exec.grace_s,
                  "exec: seconds between SIGINT, SIGTERM and SIGKILL at max_time")
      ->check(Seconds(true))
      ->capture_default_str();
  app->add_option("--max-log-lines", f->exec.max_log_lines,
                  "exec: output lines kept in a try's log, the first and the last half (and at "
                  "most 16 MB); the count of those between is logged")
      ->check(CLI::Range(size_t{2}, size_t{10'000'000}))
      ->capture_default_str();
  app->add_option("--allowed-commands", f->exec.allowed_commands,
                  "exec: globs the resolved argv[0] must match ('*' stops at '/'; repeat or "
                  "comma-separate); others fail")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--allowed-env", f->exec.allowed_env,
                  "exec: globs of variable names a job's env may set (none by default; never "
                  "the dynamic loader's)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--pass-env", f->pass_env,
                  "Variables commands get from the daemon's environment beyond PATH, HOME, "
                  "USER, LOGNAME, LANG, LANGUAGE, LC_ALL, LC_CTYPE, TZ, TMPDIR")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--publish-url", f->publish.url,
                  "publish: where events go: http(s)://HOST/PATH (POSTed as JSON arrays) or "
                  "amqp(s)://USER@HOST:PORT/VHOST (an AMQP 0-9-1 broker: RabbitMQ, Mozilla Pulse)");
  app->add_option("--publish-exchange", f->publish.exchange,
                  "publish: the AMQP exchange messages go to (with an amqp:// URL)");
  app->add_option("--publish-header", f->publish.headers,
                  "publish: an extra 'Name: value' header (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--publish-token", f->publish.token,
                  "publish: bearer token for an HTTP endpoint, password for an AMQP broker (or "
                  "SLUICE_PUBLISH_TOKEN; prefer --publish-token-file)");
  app->add_option("--publish-token-file", f->publish_token_file,
                  "publish: file holding the bearer token or AMQP password");
  app->add_option("--publish-skip", f->publish.skip_routing_keys,
                  "publish: events whose routing key this regex finds (re.search: anchor with ^ "
                  "and $) are not sent");
  app->add_option("--publish-batch", f->publish.batch_size,
                  "publish: events per POST (AMQP: per confirm wait)")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  app->add_option("--publish-timeout", f->publish.timeout_s,
                  "publish: seconds per POST (AMQP: to connect, and for a batch's confirms)")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--archive-path", f->archive_path,
                  "Where task backends keep what they fetch from (git clones)")
      ->capture_default_str();
  app->add_option("--items-dir", f->tasks.items_dir,
                  "Also append each task's items to DIR/<task_id>.jsonl");
  app->add_option("--items-redis", f->items_redis,
                  "Also push each task's new items to a Redis list (redis://, "
                  "unix://, redis+sentinel://), each exactly once");
  app->add_option("--items-key", f->items_key, "The Redis list --items-redis pushes to")
      ->capture_default_str();
  app->add_option("--items-format", f->items_format,
                  "What --items-redis pushes: json, or pickle (Python pickles, as arthurd "
                  "pushes them, for readers that pickle.loads the list)")
      ->check(CLI::IsMember({"json", "pickle"}))
      ->capture_default_str();
  app->add_option("--broker", f->broker,
                  "A cluster: redis://[:PASSWORD@]HOST:PORT/DB, unix:///PATH?db=N or "
                  "redis+sentinel://H1:26379,H2:26379/MASTER/DB (needs a PostgreSQL --database)");
  app->add_option("--broker-prefix", f->broker_prefix,
                  "Prefix of the cluster's Redis keys (several clusters can share one Redis)")
      ->capture_default_str();
  app->add_option("--shards", f->shards, "Streams per queue (the same on every process)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app->add_option("--max-deliveries", f->max_deliveries,
                  "Hand-outs of one job whose worker went away before it fails as dead_letter")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app->add_option("--reconcile-interval", f->reconcile_interval_s,
                  "Seconds between passes publishing waiting jobs the broker lost")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--lease", f->lease_s,
                  "On a shared (PostgreSQL) database: seconds a daemon's hold on its spools "
                  "lasts unless renewed; a standby takes a spool over this long after its "
                  "owner died")
      ->check(Seconds(false))  // NaN passes a range check
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  app->add_option("--task-workers", f->tasks.workers, "Task runs at a time")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app->add_option("--task-lease", f->tasks.lease_s,
                  "Seconds a task run's worker has to renew its lease before the run is retried")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--task-retry-delay", f->tasks.retry_delay_s,
                  "Seconds before a failed task run is retried (doubles, at most an hour)")
      ->check(Seconds(true))
      ->capture_default_str();
  app->add_option("--task-timeout", f->task_timeout_s, "Seconds one backend command may take")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--task-runs-kept", f->tasks.runs_kept,
                  "Runs kept per task (with their logs); older ended ones are deleted")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}))
      ->capture_default_str();
  app->add_option("--max-tasks", f->tasks.max_tasks,
                  "Recurring tasks stored here, all held in memory (507 to /add beyond)")
      ->check(CLI::Range(static_cast<size_t>(1), static_cast<size_t>(100000000)))
      ->capture_default_str();
  app->add_option("--max-task-bytes", f->tasks.max_task_bytes,
                  "Bytes of those tasks' fields (ids, arguments) in all (507 beyond)")
      ->check(CLI::Range(static_cast<size_t>(1), static_cast<size_t>(1) << 40))
      ->capture_default_str();
  app->add_option("--max-attempts", e.max_attempts, "Tries per job for passing errors")
      ->each(given("max-attempts"))
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app->add_option("--max-interruptions", e.max_interruptions,
                  "Daemon deaths during one job before it fails as a poison pill")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app->add_flag("--no-archive", f->no_archive, "Delete succeeded files instead of archiving");
  app->add_flag("--burst", e.burst, "Drain the spool (and due retries), print a summary, exit");
  app->add_option("--retry-delay", e.retry_delay_s, "First retry delay in seconds (doubles)")
      ->each(given("retry-delay"))
      ->check(Seconds(true))
      ->capture_default_str();
  app->add_option("--retry-max-delay", e.retry_max_delay_s, "Longest retry delay in seconds")
      ->each(given("retry-max-delay"))
      ->check(Seconds(true))
      ->capture_default_str();
  app->add_option("--settle", e.settle_s, "Seconds a scanned file must be quiet before it is taken")
      ->check(Seconds(true))
      ->capture_default_str();
  app->add_option("--max-backlog", e.max_backlog,
                  "Files registered ahead of the workers; the rest wait as names, oldest first")
      ->check(CLI::Range(static_cast<size_t>(1), static_cast<size_t>(100000000)))
      ->capture_default_str();
  app->add_option("--max-api-jobs", e.max_api_jobs,
                  "Jobs sent over HTTP held here until they end (503 beyond)")
      ->check(CLI::Range(static_cast<size_t>(1), static_cast<size_t>(100000000)))
      ->capture_default_str();
  app->add_option("--max-api-bytes", e.max_api_bytes,
                  "Bytes of payload those jobs may hold in memory (503 beyond)")
      ->check(CLI::Range(static_cast<size_t>(1), static_cast<size_t>(1) << 40))
      ->capture_default_str();
  app->add_option("--max-file-bytes", e.max_file_bytes, "Larger files fail as too large")
      ->check(WholeNumber())
      ->capture_default_str();
  app->add_option("--max-reading-bytes", e.max_reading_bytes,
                  "Bytes of spool files read and parsed at once, over every spool (a larger "
                  "file runs alone)")
      ->check(CLI::Range(static_cast<uint64_t>(1), static_cast<uint64_t>(1) << 40))
      ->capture_default_str();
  app->add_option("--progress-interval", e.progress_interval_s, "Seconds between progress lines")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--storage-connect-timeout", f->storage_connect_timeout_s,
                  "Seconds to connect to the log storage service")
      ->check(Seconds(false))
      ->capture_default_str();
  app->add_option("--storage-timeout", f->storage_timeout_s,
                  "Seconds one excerpt upload may take in all")
      ->check(Seconds(false))
      ->capture_default_str();
}

ClusterWorkerOptions ClusterOptionsOf(const ServeFlags& f) {
  ClusterWorkerOptions o;
  o.max_workers = f.engine.max_workers;
  o.lease_s = f.lease_s;
  o.retry_delay_s = f.engine.retry_delay_s;
  o.retry_max_delay_s = f.engine.retry_max_delay_s;
  o.max_file_bytes = f.engine.max_file_bytes;
  o.max_batch = f.engine.max_batch;
  o.retention = f.engine.retention;
  return o;
}

int RunServe(ServeFlags f) {
  // Signals are taken by the main thread only (sigtimedwait), never by a worker: blocked
  // before any thread starts (the log flusher is the first), so every thread inherits it.
  sigset_t set = BlockDaemonSignals();
  Status st = ConfigureLogging(f.log);
  if (!st.ok()) return ExitCode(st);
  SetMaxJsonDepth(f.max_json_depth);
  f.engine.archive = !f.no_archive;
  curl_global_init(CURL_GLOBAL_DEFAULT);

  if (!f.broker.empty() && !IsPostgresUrl(f.database)) {
    return ExitCode(ClusterNode::SqliteRefused());  // before a SQLite file is made
  }
  // The flags and the spools are checked before the database is opened (or made).
  if (!f.publish_token_file.empty()) {
    auto t = Secret("--publish-token", f.publish_token_file, f.publish.token, nullptr);
    if (!t.ok()) return ExitCode(t.status());
    f.publish.token = *t;
  }
  auto specs = SpoolSpecs(f);
  if (!specs.ok()) return ExitCode(specs.status());
  auto store = OpenStore(f.database, f.store);
  if (!store.ok()) return ExitCode(store.status());

  std::unique_ptr<kcidb::ExcerptUploader> uploader;
  auto storage_token = Secret("--storage-token", f.storage_token_file, "", "STORAGE_TOKEN");
  if (!storage_token.ok()) return ExitCode(storage_token.status());
  const char* base = std::getenv("STORAGE_BASE_URL");
  if (!storage_token->empty()) {
    if (base == nullptr || *base == '\0') {
      return ExitCode(Status::InvalidArgument("STORAGE_TOKEN is set but STORAGE_BASE_URL is not"));
    }
    kcidb::StorageOptions so;
    so.base_url = base;
    so.token = *storage_token;
    so.connect_timeout_ms = static_cast<long>(f.storage_connect_timeout_s * 1000);
    so.total_timeout_ms = static_cast<long>(f.storage_timeout_s * 1000);
    uploader = std::make_unique<kcidb::ExcerptUploader>(so, store->get());
    spdlog::info("log excerpts over 256 characters go to {}", base);
  }
  std::vector<std::string> spool_dirs;
  for (const SpoolSpec& spec : *specs) {
    // A queuedir is made when missing (as Mozilla's is): before it is locked.
    if (spec.flags.layout == "queuedir") {
      st = QueueDir(Env::Default(), spec.flags.engine.spool_dir).Prepare();
      if (!st.ok()) return ExitCode(st);
    }
    spool_dirs.push_back(spec.flags.engine.spool_dir);
  }
  std::string shared_id;
  if ((*store)->Shared()) {
    auto id = SharedDatabaseId(store->get());
    if (!id.ok()) return ExitCode(id.status());
    shared_id = *id;
  }
  st = LockForDaemon(f.database, spool_dirs, shared_id);
  if (!st.ok()) return ExitCode(st);
  for (SpoolSpec& spec : *specs) {
    spec.flags.engine.spool_lock =
        (*store)->Shared() ? Folders::Lock::kShared : Folders::Lock::kExclusive;
  }

  auto api_token = Secret("--api-token", f.api_token_file, f.api_token, "SLUICE_API_TOKEN");
  if (!api_token.ok()) return ExitCode(api_token.status());
  std::string token = *api_token;
  // Commands get a clean environment, die with the daemon, and what a dead predecessor left
  // running is killed before anything starts.
  st = PrepareChildren(store->get(), "serve", f.pass_env);
  if (!st.ok()) return ExitCode(st);
  if (!f.no_api && !api::IsLoopback(f.host) && token.empty() && !f.insecure) {
    return ExitCode(Status::InvalidArgument(
        "refusing to serve the API on " + f.host +
        " without --api-token (or SLUICE_API_TOKEN); add --insecure to do it anyway"));
  }

  // A database other daemons share: one owner per spool (engine/ownership.h). A daemon given
  // a spool another one runs stands by here until that one's lease ends.
  std::unique_ptr<Ownership> ownership;
  if ((*store)->Shared()) {
    ownership =
        std::make_unique<Ownership>(store->get(), Clock::Real(), UniqueProcessName(), f.lease_s);
    std::vector<std::string> names;
    for (const SpoolSpec& spec : *specs) {
      names.push_back(Ownership::SpoolLease(
          std::filesystem::absolute(spec.flags.engine.spool_dir).lexically_normal().string()));
    }
    while (true) {
      auto all = ownership->TryAcquire(names);
      if (!all.ok()) return ExitCode(all.status());
      if (*all) break;
      struct timespec ts = {1, 0};
      int sig = sigtimedwait(&set, nullptr, &ts);
      if (sig == SIGINT || sig == SIGTERM) {
        ownership->Release();
        return 0;
      }
    }
  }

  // A cluster: HTTP jobs go through the broker to the workers of any process.
  std::unique_ptr<ClusterNode> cluster;
  if (!f.broker.empty()) {
    std::set<std::string> kinds;
    for (const SpoolSpec& spec : *specs) kinds.insert(spec.flags.kind);
    auto node = ClusterNode::Open(f, store->get(), ownership.get(), std::move(kinds));
    if (!node.ok()) return ExitCode(node.status());
    cluster = std::move(*node);
    for (SpoolSpec& spec : *specs) spec.flags.engine.api_broker = cluster->broker();
  }
  // The spools share the database: one job id sequence, one event stream.
  JobIds ids;
  EventHub hub(api::SseFrame);  // each live event encoded once for all its readers
  // A database other daemons write to too: live events come from it, in id order (through
  // the cluster's Redis when there is one, the store filling any hole).
  std::unique_ptr<EventTail> tail;
  if ((*store)->Shared()) {
    tail = std::make_unique<EventTail>(store->get(), &hub, cluster ? cluster->fanout() : nullptr);
    st = tail->Start();
    if (!st.ok()) return ExitCode(st);
  }
  std::mutex commit_order;
  // What is past the retention is pruned by one process of those sharing the database (the
  // "pruner" lease), and there by the writer of its first spool only (not by the other
  // spools' nor by the cluster workers' writers this daemon runs); by the main loop below
  // when every spool is a queuedir (a queuedir has no writer).
  std::atomic<bool> pruner{ownership == nullptr};
  // Tried at once (then every second): a --burst run may be over within a second.
  if (ownership) pruner = ownership->TryTake(Ownership::kPrunerLease);
  static const std::atomic<bool> kNotPruner{false};
  f.engine.retention.pruner = &kNotPruner;
  bool taken = false;
  for (SpoolSpec& spec : *specs) {
    bool first = !taken && spec.flags.layout != "queuedir";
    spec.flags.engine.retention.pruner = first ? &pruner : &kNotPruner;
    taken = taken || first;
  }
  std::unique_ptr<Retention> retention;
  if (!taken) {
    RetentionOptions ro = f.engine.retention;
    ro.pruner = &pruner;
    retention = std::make_unique<Retention>(store->get(), Env::Default(), Clock::Real(), ro);
  }
  if (ownership) {
    for (SpoolSpec& spec : *specs) {
      EngineOptions& e = spec.flags.engine;
      e.owner = ownership->owner();
      e.adopt_interval_s = f.lease_s;
      // Every commit is made under the spool's lease and the daemon's: one taken over
      // meanwhile (this daemon was paused past it) commits nothing, and the daemon stops.
      std::string spool =
          Ownership::SpoolLease(std::filesystem::absolute(e.spool_dir).lexically_normal().string());
      std::string self = Ownership::DaemonLease(ownership->owner());
      e.holds = {{spool, ownership->EpochOf(spool)}, {self, ownership->EpochOf(self)}};
      e.on_lost_lease = [](const Status& why) {
        spdlog::critical("{}: stopping at once", why.message());
        spdlog::default_logger()->flush();
        std::_Exit(75);
      };
    }
  }
  ReadBudget reading(f.engine.max_reading_bytes);  // one for every spool of the daemon
  SpoolSet spools(store->get(), EngineShared{&ids, &hub, &commit_order, &reading});
  spools.SetCluster(cluster != nullptr);
  st = spools.Start(std::move(*specs), uploader.get());
  if (!st.ok()) return ExitCode(st);
  if (cluster) {
    std::map<std::string, Handler*> handlers;
    for (const auto& s : spools.spools()) handlers.emplace(s->handler->kind(), s->handler.get());
    st = cluster->StartWorkers(std::move(handlers), ClusterOptionsOf(f), &commit_order);
    if (!st.ok()) return ExitCode(st);
  }

  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(std::make_unique<GitBackend>(f.archive_path, f.task_timeout_s));
  f.tasks.job_timeout_s = f.task_timeout_s;
  std::unique_ptr<RedisItemsOut> items_out;
  if (!f.items_redis.empty()) {
    auto out = RedisItemsOut::Open(f.items_redis, f.items_key, f.items_format == "pickle");
    if (!out.ok()) return ExitCode(out.status().Annotate("--items-redis"));
    items_out = std::move(*out);
    f.tasks.items_out = items_out.get();
    spdlog::info("tasks: items also go to {}", items_out->Describe());
  }
  if (cluster) {
    // Each due run goes out as a cluster job: any worker of its queue runs it.
    f.tasks.dispatch = [&spools](const TaskRun& run) -> Status {
      Engine* engine = spools.FirstEngine();
      if (engine == nullptr) return Status::FailedPrecondition("no spool registers jobs here");
      Job job;
      job.queue = run.queue;
      job.kind = kTaskJobKind;
      job.payload = TaskJobPayload(run);
      job.idempotency_key = TaskJobKey(run.job_id);
      return engine->Submit(std::move(job)).status();
    };
  }
  TaskScheduler tasks(f.tasks, store->get(), std::move(backends), Clock::Real(),
                      EngineShared{&ids, &hub, &commit_order});
  // On a shared database one daemon runs the recurring tasks: the holder of the "scheduler"
  // lease; the others take it over when it dies.
  auto take_scheduler = [&]() -> Result<bool> {
    if (f.engine.burst || tasks.running()) return false;
    if (ownership) {
      auto held = ownership->TryAcquire({kSchedulerLease});
      if (!held.ok() || !*held) return held;
    }
    Status started = tasks.Start();
    if (!started.ok()) return started;
    return true;
  };
  auto took = take_scheduler();
  if (!took.ok()) return ExitCode(took.status());

  api::RouterDeps deps;
  deps.store = store->get();
  deps.tasks = f.engine.burst ? nullptr : &tasks;
  deps.token = token;
  deps.loopback_names_only = token.empty() && api::IsLoopback(f.host);
  deps.health = [&spools] { return spools.Health(); };
  deps.spools = [&spools] {
    std::vector<api::SpoolInfo> out;
    for (const auto& s : spools.spools()) {
      api::SpoolInfo info{s->root(), std::string(s->handler->kind()), 0, 0, 0, s->name, s->layout};
      if (s->engine) {
        info.backlog = s->engine->Backlog();
        info.succeeded = s->engine->counters().succeeded.load();
        info.failed = s->engine->counters().failed.load();
      } else {
        info.succeeded = s->runner->counters().succeeded.load();
        info.failed = s->runner->counters().dead.load();
      }
      out.push_back(std::move(info));
    }
    return out;
  };
  deps.metrics = [&spools, &hub, &store, &cluster] {
    std::function<void(Exposition*)> more;
    if (cluster) more = [&cluster](Exposition* x) { cluster->AppendMetrics(x); };
    return api::RenderMetrics(spools.engines(), hub, store->get(), more);
  };
  deps.submit = [&spools, &cluster](Job job, api::RouterDeps::SubmitDone done) {
    Engine* engine = spools.ForKind(job.kind);
    // A cluster's workers may run kinds this daemon's spools do not: any engine registers it.
    if (engine == nullptr && cluster && IsJobKind(job.kind)) engine = spools.FirstEngine();
    if (engine == nullptr) {
      return done(Status::InvalidArgument("unknown kind '" + job.kind +
                                          "' (no spool of this daemon runs it)"));
    }
    engine->SubmitAsync(std::move(job), [done = std::move(done)](Result<SubmitResult> r) {
      if (!r.ok()) return done(r.status());
      done(std::make_pair(std::move(r->job), r->created));
    });
  };
  deps.cancel = [&spools](int64_t id) -> Result<Job> {
    auto engine = spools.ForJob(id);
    if (!engine.ok()) return engine.status();
    return (*engine)->Cancel(id);
  };
  deps.prioritize = [&spools](int64_t id) -> Result<Job> {
    auto engine = spools.ForJob(id);
    if (!engine.ok()) return engine.status();
    return (*engine)->Prioritize(id);
  };
  deps.retry = [&spools](const std::vector<int64_t>& ids, std::vector<bool>* as_new_file,
                         int wait_ms) {
    std::vector<Result<Job>> out;
    int64_t wait_until = Clock::Real()->MonotonicMicros() + int64_t{wait_ms} * 1000;
    as_new_file->assign(ids.size(), false);
    // Spool files' moves are settled once per spool: one fsync, one store write.
    std::map<Engine*, std::vector<int64_t>> moved;
    std::map<Engine*, std::vector<size_t>> moved_at;
    for (size_t i = 0; i < ids.size(); ++i) {
      auto engine = spools.ForJob(ids[i]);
      if (!engine.ok()) {
        out.emplace_back(engine.status());
        continue;
      }
      bool fresh = false;
      std::vector<int64_t>& list = moved[*engine];
      size_t before = list.size();
      out.push_back((*engine)->Retry(ids[i], &fresh, &list, wait_until));
      (*as_new_file)[i] = fresh;
      if (list.size() > before) moved_at[*engine].push_back(i);
    }
    for (const auto& [engine, list] : moved) {
      Status settled = engine->SettleRetries(list);
      if (settled.ok()) continue;
      for (size_t i : moved_at[engine]) out[i] = settled;
    }
    return out;
  };
  // By name: the first spool that knows the file.
  deps.prioritize_name = [&spools](const std::string& name) -> Result<std::pair<Job, std::string>> {
    Status last = Status::NotFound("no job, spool file or deferred file named " + name);
    for (const auto& s : spools.spools()) {
      if (!s->engine) continue;
      auto done = s->engine->PrioritizeName(name);
      if (done.ok()) return std::make_pair(std::move(done->job), std::move(done->action));
      if (!done.status().IsNotFound()) return done.status();
    }
    return last;
  };
  deps.promote = [&spools](const std::string& name) -> Result<Job> {
    for (const auto& s : spools.spools()) {
      if (!s->engine) continue;
      auto job = s->engine->Promote(name, false);
      if (job.ok() || !job.status().IsNotFound()) return job;
    }
    return Status::NotFound("no deferred file named " + name);
  };
  deps.promote_all = [&spools] {
    std::vector<std::string> names;
    for (const auto& s : spools.spools()) {
      if (!s->engine) continue;
      for (std::string& n : s->engine->PromoteAll()) names.push_back(std::move(n));
    }
    return names;
  };
  deps.hub = &hub;
  deps.sse_buffer = f.sse_buffer;
  deps.max_streams = f.max_sse_clients;
  api::Router router(deps);
  std::unique_ptr<api::HttpServer> http;
  if (!f.no_api) {
    api::HttpServerOptions ho;
    ho.host = f.host;
    ho.port = static_cast<uint16_t>(f.port);
    ho.max_body_bytes = f.max_body_bytes;
    ho.max_body_memory = f.max_body_memory;
    ho.request_timeout_s = f.http_timeout_s;
    ho.keepalive_s = f.sse_keepalive_s;
    auto server = api::HttpServer::Start(ho, &router);
    if (server.ok()) {
      http = std::move(*server);
      spdlog::info("api: listening on http://{}:{}", f.host, http->port());
    } else if (f.port_given) {
      return ExitCode(server.status());
    } else {
      // The default port is taken (another daemon?): the spool matters more than the API.
      spdlog::error("api: {}; running without the HTTP API (give --port, or --no-api)",
                    server.status().message());
    }
  }
  spdlog::info("sluice: {} {} spool(s), database {}", f.engine.burst ? "draining" : "watching",
               spools.spools().size(), DescribeStore(f.database, f.store));
  int64_t t0 = Clock::Real()->MonotonicMicros();
  int64_t last_beat = 0;
  int64_t last_take = Clock::Real()->MonotonicMicros();
  int64_t next_prune = 0;
  while (!spools.Done()) {
    if (ownership) {
      Status own = ownership->Renew();
      if (!own.ok()) {
        // Another daemon may run the spool from now on: stop at once, as after a kill -9
        // (whose recovery is tested); a supervisor starts this one again, on standby.
        spdlog::critical("{}: stopping at once", own.message());
        spdlog::default_logger()->flush();
        std::_Exit(75);
      }
    }
    if (cluster) cluster->Tick();
    int64_t mono = Clock::Real()->MonotonicMicros();
    if (ownership && mono - last_take >= 1'000'000) {
      last_take = mono;
      if (!f.engine.burst && !tasks.running()) {
        auto taken = take_scheduler();
        if (!taken.ok())
          spdlog::warn("tasks: cannot take the scheduler: {}", taken.status().message());
      }
      pruner = ownership->Holds(Ownership::kPrunerLease);  // given up when taken over
      if (!pruner.load()) pruner = ownership->TryTake(Ownership::kPrunerLease);
    }
    if (retention && mono >= next_prune) next_prune = mono + retention->MaybePrune(false);
    if (mono - last_beat >= 5'000'000) {
      // The heartbeats `sluice check` looks for, one per spool.
      last_beat = mono;
      for (const auto& s : spools.spools()) {
        Status hb = (*store)->PutValue(kHeartbeatNs, HeartbeatKey(s->root()),
                                       std::to_string(Clock::Real()->NowMicros()));
        if (!hb.ok()) spdlog::warn("cannot write the heartbeat: {}", hb.ToString());
      }
    }
    // A drain's end is seen at once; a watching daemon wakes five times a second.
    struct timespec ts = {0, (f.engine.burst ? 5 : 200) * 1000 * 1000};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGHUP) {
      Status rs = ReopenLogFile();
      if (!rs.ok()) spdlog::error("reopening the log file: {}", rs.ToString());
      spools.Reload();
    } else if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("{}: finishing jobs in hand, then stopping", strsignal(sig));
      spools.RequestStop();
      if (cluster) cluster->RequestStop();
      break;
    }
  }
  st = spools.Wait();
  if (cluster) {
    cluster->RequestStop();
    cluster->Wait();
  }
  if (http) http->Stop();
  tasks.Stop();
  spools.Stop();
  if (ownership) ownership->Release();  // a standby takes over at once
  double secs = (Clock::Real()->MonotonicMicros() - t0) / 1e6;
  EngineCounters c;
  for (const Engine* e : spools.engines()) {
    const EngineCounters& ec = e->counters();
    c.succeeded += ec.succeeded.load();
    c.failed += ec.failed.load();
    c.retried += ec.retried.load();
    c.empty_deleted += ec.empty_deleted.load();
    c.objects += ec.objects.load();
    c.bytes += ec.bytes.load();
  }
  uint64_t done = c.succeeded + c.failed;
  if (f.engine.burst) {
    std::printf(
        "summary: %llu files in %.2fs (%.0f files/s): %llu succeeded, %llu failed, %llu retries, "
        "%llu empty deleted; %llu objects (%.0f/s); %.1f MB (%.1f MB/s)\n",
        static_cast<unsigned long long>(done), secs, secs > 0 ? done / secs : 0.0,
        static_cast<unsigned long long>(c.succeeded.load()),
        static_cast<unsigned long long>(c.failed.load()),
        static_cast<unsigned long long>(c.retried.load()),
        static_cast<unsigned long long>(c.empty_deleted.load()),
        static_cast<unsigned long long>(c.objects.load()), secs > 0 ? c.objects / secs : 0.0,
        c.bytes / 1e6, secs > 0 ? c.bytes / 1e6 / secs : 0.0);
    std::fflush(stdout);
  } else {
    spdlog::info("stopped after {} jobs ({} succeeded, {} failed)", done, c.succeeded.load(),
                 c.failed.load());
  }
  spdlog::default_logger()->flush();
  return ExitCode(st);
}

}  // namespace sluice::cli
