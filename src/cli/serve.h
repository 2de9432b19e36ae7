// `sluice serve` and `sluice monitor-submissions`: run the engine on a spool until stopped.
#pragma once

#include <CLI/CLI.hpp>
#include <set>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "core/json.h"
#include "core/log.h"
#include "engine/cluster_worker.h"
#include "engine/options.h"
#include "engine/task_scheduler.h"
#include "handlers/exec/exec_handler.h"
#include "handlers/publish/publish_handler.h"
#include "store/store.h"

namespace sluice::cli {

struct ServeFlags {
  EngineOptions engine;
  std::string database = "sqlite:sluice.db";
  StoreOptions store;
  std::string trees_file;
  std::string kind = "kcidb";    // the handler: kcidb, exec or publish
  std::string name;              // the spool's name (default: its directory's)
  std::string layout = "spool";  // or "queuedir" (tmp/ new/ cur/ logs/ dead/)
  int max_retries = 10;          // queuedir: retries before dead/
  double retry_time_s = 60;      // queuedir: seconds between retries
  std::string spools_config;     // a config file with [spool.NAME] sections
  std::set<std::string> given;   // retry flags set by the user (the rest take the kind's defaults)
  ExecOptions exec;
  std::string command_json;  // --command
  PublishOptions publish;
  LogOptions log;
  int max_json_depth = kDefaultMaxJsonDepth;  // untrusted JSON nested deeper is refused
  bool no_archive = false;
  double storage_connect_timeout_s = 5;
  double storage_timeout_s = 30;
  // HTTP API
  bool no_api = false;
  std::string host = "127.0.0.1";
  int port = 8080;
  bool port_given = false;
  std::string api_token;  // or SLUICE_API_TOKEN
  std::string api_token_file;
  std::string publish_token_file;
  std::string storage_token_file;     // or STORAGE_TOKEN
  std::vector<std::string> pass_env;  // variables children get beyond the documented few
  bool insecure = false;
  size_t max_body_bytes = 8u << 20;
  uint64_t max_body_memory = 256ull << 20;
  double http_timeout_s = 30;
  size_t sse_buffer = 10000;
  size_t max_sse_clients = 1000;
  double sse_keepalive_s = 15;
  // Recurring tasks (the Arthur API)
  TaskOptions tasks;
  std::string archive_path = "sluice-archive";
  double lease_s = 15;      // --lease: a shared database's spool ownership (engine/ownership.h)
  std::string items_redis;  // --items-redis: each task's items to a Redis list too
  std::string items_key = "items";    // its key (Arthur's default)
  std::string items_format = "json";  // or "pickle", as arthurd pushes them
  double task_timeout_s = 3600;
  // A cluster (cli/cluster.h): ready job ids go through Redis Streams.
  std::string broker;                    // --broker redis://… (empty: no cluster)
  std::string broker_prefix = "sluice";  // of every Redis key (clusters sharing one Redis)
  int shards = 8;                        // streams per queue; the same on every process
  int max_deliveries = 5;                // hand-outs of one job before it fails as dead_letter
  double reconcile_interval_s = 5;       // the reconciler's period
  std::vector<std::string> queues;       // `sluice worker QUEUE…`: the queues served (empty: all)
};

// Adds the flags of `serve`. With `kernelci_only`, just KernelCI's monitor_submissions flags
// (--spool-dir --max-workers --interval --trees-file) plus logging and --database.
void AddServeFlags(CLI::App* app, ServeFlags* flags, bool kernelci_only);

// The cluster workers' options from the daemon's flags.
ClusterWorkerOptions ClusterOptionsOf(const ServeFlags& flags);
// `sluice worker`: runs the HTTP jobs of `flags.queues` handed out by `flags.broker` until
// SIGINT/SIGTERM (jobs in hand finish first), or with --burst until they are drained.
int RunWorker(ServeFlags flags);
// Runs until SIGINT/SIGTERM (or, with --burst, until the spool is drained).
int RunServe(ServeFlags flags);

}  // namespace sluice::cli
