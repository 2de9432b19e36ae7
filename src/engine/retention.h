// Retention: what the store keeps of the past. Events older than --event-max-age or beyond
// the newest --event-max-count are pruned every minute. Ended jobs older than --job-max-age
// (succeeded and cancelled ones) or --failed-job-max-age (failed ones) are deleted with their
// events, a chunk at a time, oldest first: a long history is caught up with chunk after chunk
// while the writer is idle, in at most about a tenth of its time while it writes; then it is
// checked every minute.
// A job whose file is still in its spool (its move to archive/ or failed/ not made yet), or
// whose queuedir item is still in cur/ (its deletion not made yet), stays: the row is what
// tells a restart that the file or item has run.
//
// The writer thread runs it between its commits (Writer), so pruning never competes with a
// batch for the database; where no writer runs (queuedirs only), the daemon's main loop does.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/env.h"
#include "store/store.h"

namespace sluice {

struct JobRetention {
  int64_t max_age_s = 30 * 24 * 3600;  // succeeded and cancelled jobs; 0: kept for ever
  int64_t failed_max_age_s = 0;        // failed jobs; 0: kept for ever
};

struct RetentionOptions {
  EventRetention events;
  JobRetention jobs;
  // When set: prune only while it is true. On a database several processes share, one prunes
  // at a time: the holder of the "pruner" lease.
  const std::atomic<bool>* pruner = nullptr;
};

class Retention {
 public:
  Retention(Store* store, Env* env, Clock* clock, RetentionOptions options);
  // Says how many jobs went since the last line, when a stop cut a catch-up short.
  ~Retention();

  // Prunes what is due. Returns the microseconds until it is due again. `idle`: the writer
  // has nothing else to do (a long history is then deleted chunk after chunk; while it
  // writes, chunks take at most about a tenth of its time).
  int64_t MaybePrune(bool idle);
  // Whether ended jobs past their age may be left to delete: before the first round, and
  // while the last round left more (the next chunk is then due at once when idle). Any
  // thread may ask (a --burst drain is not finished while it is true).
  bool CatchingUp() const { return catching_up_.load(); }

  static constexpr int64_t kEvery = 60'000'000;  // micros between rounds
  // Micros between looks at the pruner lease while another holds it (taking it over starts
  // a round at once).
  static constexpr int64_t kNotPrunerEvery = 1'000'000;
  static constexpr int kChunk = 1000;  // jobs examined per chunk and kind of age
  // Micros until a round the store failed on is tried again.
  static constexpr int64_t kAfterFailure = 5'000'000;

 private:
  struct Age {
    std::vector<JobState> states;
    int64_t max_age_s = 0;
    EndedJobsPosition after;  // examined so far
  };
  void PruneEvents();
  // One chunk of each age; whether one of them had more.
  bool PruneJobs();
  // Whether the file `job` ran on is still in its spool.
  bool FileStillThere(const Job& job);
  // A queuedir's job (its items keep no identity): whether its item is still in cur/, as a
  // finished one is when a crash cut its deletion short.
  bool ItemStillInCur(const Job& job);

  Store* store_;
  Env* env_;
  Clock* clock_;
  RetentionOptions options_;
  Age ages_[2];
  int64_t next_events_ = 0;  // monotonic micros; 0: at the first call
  int64_t next_jobs_ = 0;
  int64_t unlogged_ = 0;  // jobs pruned since the last log line
  int64_t last_log_ = 0;  // monotonic micros
  std::atomic<bool> catching_up_{true};
  bool failing_ = false;  // the last round's store calls failed
};

}  // namespace sluice
