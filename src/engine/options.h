// EngineOptions: everything `sluice serve` can tune about the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "engine/retention.h"
#include "spool/spool_dir.h"

namespace sluice {

struct EngineOptions {
  std::string spool_dir;
  std::string queue = "default";
  int max_workers = 5;
  double interval_s = 5.0;         // periodic full rescan: the safety net behind inotify
  int max_attempts = 5;            // tries per job before it fails for good
  int max_interruptions = 20;      // daemon deaths during one job before it fails as a poison pill
  double retry_delay_s = 2.0;      // first backoff; doubles per attempt, with jitter
  double retry_max_delay_s = 300;  // backoff cap
  bool archive = true;             // false: delete succeeded files instead of archiving
  SaveDirs save;                   // where finished files go instead of archive/ and failed/
  bool burst = false;              // drain the spool (and due retries), then stop
  double settle_s = 1.0;           // quiet time for files found by scan when leases are unusable
  uint64_t max_file_bytes = 512ull << 20;
  // Bytes of spool files read and parsed at once (engine/read_budget.h); a larger file runs
  // alone. The daemon's spools share one budget (EngineShared::reading).
  uint64_t max_reading_bytes = 128ull << 20;
  size_t max_batch = 1024;  // jobs per group commit
  // Files registered ahead of the workers; the rest wait as names only, oldest first, so
  // memory stays bounded however many files a spool holds.
  size_t max_backlog = 10000;
  // Jobs sent over HTTP are held in memory, payload included, until they end (or, with a
  // run_at, until then): beyond this many, or this many payload bytes, a submission is
  // refused as unavailable (503) until some end.
  size_t max_api_jobs = 100000;
  size_t max_api_bytes = 256u << 20;
  double progress_interval_s = 5.0;
  RetentionOptions retention;
  // Socorro's pairs: with {".dump"}, x.json is a job only once x.dump is there too (both
  // complete); a file still without its companions after pair_timeout_s fails with that reason.
  std::vector<std::string> companions;
  // A running job whose worker has not heartbeaten for this long (stuck in its handler) is
  // run again by another worker, the lost try counted as an attempt; its late result is
  // dropped. 0: no leases.
  double worker_lease_s = 300;
  double pair_timeout_s = 600;
  // A daemon's spool deleted and created again is locked before it is taken, as the daemon
  // locked it at start (cli/daemon_lock.h): exclusively, or shared on a shared database.
  Folders::Lock spool_lock = Folders::Lock::kNone;
  // Jobs sent over HTTP: this engine runs (and recovers) those of its kind. The daemon gives
  // them to one engine per kind; the others leave them alone.
  bool takes_api_jobs = true;
  // A shared database (engine/ownership.h): this daemon's name. Jobs it takes over HTTP carry
  // it; at start, and every adopt_interval_s, the engine takes over the unfinished HTTP jobs
  // of daemons that are gone (no daemon lease), and leaves those of live ones alone.
  std::string owner;
  double adopt_interval_s = 15;
  // With `owner`: the role leases ({name, epoch}) every commit is made under (the spool's,
  // the daemon's), and what to do when the store says one was taken over (stop at once).
  std::vector<std::pair<std::string, int64_t>> holds;
  std::function<void(const Status&)> on_lost_lease;
  // A cluster (`--broker`): HTTP jobs are published to this broker once their registration
  // commits, and run by cluster workers (engine/cluster_worker.h) on any process; the engine
  // neither runs nor recovers them (the reconciler publishes what the broker lost).
  Broker* api_broker = nullptr;
};

}  // namespace sluice
