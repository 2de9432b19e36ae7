// Engine: runs one spool, and jobs sent over HTTP. Discovery (inotify + scans) registers
// files as jobs, at most max_backlog ahead of the workers; a pool of workers runs the
// handler; the Writer group-commits each job's rows and state in one transaction; only after
// that commit does the file move to archive/ or failed/.
//
// A worker may start a file while its registration commits: the file stays in the spool
// until the job's final state is durable, so a crash in between only means the file is
// taken again. A job sent over HTTP has no file, so its registration commits first.
//
// Threads: one discovery thread, `max_workers` workers, one writer, one mover (files out of
// the spool after their commit, pipelined with the next commit). Public methods are
// thread-safe.
//
// Recovery (Start): jobs left running by a dead daemon go back to queued (an interruption,
// not an attempt; max_interruptions of them fail the job as a poison pill); jobs whose file
// vanished fail with that reason; files whose job already finished but which were not moved
// yet are moved; unknown files are registered.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/broker.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/metrics.h"
#include "engine/event_hub.h"
#include "engine/options.h"
#include "engine/read_budget.h"
#include "engine/shared.h"
#include "engine/waiting_files.h"
#include "engine/writer.h"
#include "handlers/handler.h"
#include "spool/spool_dir.h"
#include "spool/watcher.h"
#include "store/store.h"

namespace sluice {

extern const char* const kCleanStopNs;

// Hooks for benchmarks and tests: called on worker / writer threads; must be fast.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStarted(const Job& /*job*/) {}
  // After the job's final state committed and its file moved.
  virtual void OnFinished(const Job& /*job*/) {}
};

struct EngineCounters {
  std::atomic<uint64_t> registered{0};
  std::atomic<uint64_t> succeeded{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> objects{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> empty_deleted{0};
  std::atomic<uint64_t> commits{0};
};

// What /metrics shows beyond the counters, taken under the engine's locks.
struct EngineSnapshot {
  size_t backlog = 0;
  double oldest_pending_s = 0;  // age of the oldest file not finished yet (0 when none)
  std::map<std::string, uint64_t> failures_by_code;
  // (table, origin): at most kMaxOriginSeries of them; objects of origins past those are
  // counted under kOtherOrigins (origins come from the submissions, so from anyone).
  std::map<std::pair<std::string, std::string>, uint64_t> objects;
  static constexpr size_t kMaxOriginSeries = 1000;
  static constexpr char kOtherOrigins[] = "(other)";
};

struct SubmitResult {
  Job job;
  bool created = false;  // false: an earlier job with the same idempotency key
};

class Engine {
 public:
  // `shared`: what the engine shares with the other engines of the daemon (engine/shared.h).
  Engine(EngineOptions options, Store* store, Handler* handler, Env* env, Clock* clock,
         EngineObserver* observer = nullptr, EngineShared shared = {});
  ~Engine();

  // Prepares the spool, recovers, and starts the threads.
  Status Start();
  // Stop taking work; in-flight jobs finish and commit. Returns at once.
  void RequestStop();
  // True once the engine has stopped by itself (burst drained) or after RequestStop().
  bool Done() const { return done_.load(); }
  // Waits until Done(), then joins every thread. The engine's final status.
  Status Wait();
  // Registers a job sent over HTTP (its kind must be the handler's; its input is
  // job.payload) and returns once the registration is durable. With an idempotency key
  // already used, returns that earlier job instead. Thread-safe.
  Result<SubmitResult> Submit(Job job);
  // The same without waiting: `done` runs once the registration is durable or refused (on the
  // writer thread, or at once for a request refused before that; it must be quick).
  using SubmitCallback = std::function<void(Result<SubmitResult>)>;
  void SubmitAsync(Job job, SubmitCallback done);
  // Cancels a waiting (queued or retrying) job: it ends as cancelled, and its file goes to
  // failed/ with that reason. NotFound for an unknown job; FailedPrecondition for one that
  // runs or has ended.
  Result<Job> Cancel(int64_t id);
  // Moves a waiting job ahead of everything not prioritised already (and makes a retrying one
  // due now). A running job is returned as it is; an ended one is FailedPrecondition.
  Result<Job> Prioritize(int64_t id);
  // Runs a failed or cancelled job again. A job sent over HTTP goes back to queued with its
  // attempts reset (same id; `*as_new_file` false). A spool file's job stays in history: its
  // file moves from failed/ back into the spool and runs as a new job (`*as_new_file` true).
  // FailedPrecondition for a job that has not ended or succeeded, or whose file was put back
  // already (retried_at); NotFound for an unknown one. With `moved`, a spool file's job id is
  // added there and the caller settles them all at once (SettleRetries); without, at once.
  // A spool job that has just failed may not have its file in failed/ yet: that move is
  // waited for until `wait_until` (monotonic micros; 0: not at all), then Unavailable.
  Result<Job> Retry(int64_t id, bool* as_new_file, std::vector<int64_t>* moved = nullptr,
                    int64_t wait_until = 0);
  // Makes the moves of retried spool files durable (one fsync of the spool) and records them
  // on their jobs (retried_at), in one store write.
  Status SettleRetries(const std::vector<int64_t>& moved);
  // Moves deferred/NAME into the spool and queues it (at top priority with `prioritise`).
  // A file not registered yet is only moved; discovery takes it from there. NotFound when
  // deferred/ has no such file; AlreadyExists when the spool has a file of that name.
  Result<Job> Promote(const std::string& name, bool prioritise);
  // Promotes every deferred file, their moves made durable together (one fsync). Their names.
  std::vector<std::string> PromoteAll();
  // `sluice priority NAME`: a registered job is prioritised ("prioritised", or "running" when
  // it runs already); a deferred file is promoted at top priority ("promoted"); a file in the
  // spool not registered yet will be, at top priority ("registering"). NotFound otherwise.
  struct NamePriority {
    Job job;
    std::string action;
  };
  Result<NamePriority> PrioritizeName(const std::string& name);
  // The priority a prioritised job gets.
  static constexpr int kPrioritised = 1000;

  // SIGHUP: reload the handler's configuration.
  Status Reload();
  // OK while the spool is usable and the store can be written; else why not (the spool was
  // deleted, a folder is a symlink, StoreWritable): what /readyz answers.
  Status Health() const;
  // Unavailable, saying why, while the store's writes fail and are retried (a full disk, a
  // database gone): a submission then is refused at once rather than left waiting.
  Status StoreWritable() const;

  const EngineCounters& counters() const { return counters_; }
  EngineSnapshot Snapshot() const;
  // Handler run time per job, and the wait from a file landing (its mtime) to its start.
  const Histogram& processing_seconds() const { return processing_seconds_; }
  const Histogram& wait_seconds() const { return wait_seconds_; }
  std::string_view kind() const { return handler_->kind(); }
  // Files known and not yet finished (queued, running, retrying, or waiting to move).
  size_t Backlog() const;
  const std::string& spool_root() const { return spool_.root(); }
  // Committed events, live.
  EventHub& events() { return *hub_ptr_; }
  const EventHub& events() const { return *hub_ptr_; }

 private:
  struct Tracked {
    Job job;
    bool move_pending = false;  // final, committed, file not moved yet
    int move_failures = 0;
    int64_t beat = 0;    // while running: the worker's last heartbeat (monotonic micros)
    uint64_t claim = 0;  // which claim the running worker holds; a lost lease bumps it
    // Each companion (by --companions order) as its last attempt started; inode 0 when not
    // known (it was missing, or the job came from before a restart): moved by name then.
    std::vector<FileIdentity> companions = {};
  };

  // recovery.cc
  struct RecoveryCounts {
    size_t requeued = 0, interrupted = 0, vanished = 0;
  };
  Status Recover();
  // Puts one unfinished job found in the store back to work (or fails it: its file vanished,
  // too many interruptions).
  void RecoverJob(Job j, int64_t now, RecoveryCounts* counts);
  // Of `jobs`, the HTTP jobs this engine is to run: its kind's, its daemon's, and those of
  // daemons that are gone, moved to this one (Store::AdoptJobs).
  Result<std::vector<Job>> AdoptableApiJobs(const std::vector<Job>& jobs);
  // Every adopt_interval_s (discovery thread): the HTTP jobs of daemons gone since.
  void AdoptOrphans();
  // A deferred job (or one promoted when the daemon died): true when it stays deferred.
  bool RecoverDeferred(Job* job);
  // Tracks a finished job whose file is still in the spool, for MoveFinished. Its id.
  int64_t AdoptFinishedFile(Job job);
  // discovery.cc
  void DiscoveryLoop();
  // `from_scan`: found by a directory scan (must also be quiet for settle_s), not by inotify.
  void Examine(const std::vector<std::string>& names, bool from_scan, bool startup);
  void ScanSpool(bool startup);
  // Hands examined files to the writer for registration, oldest first; clears *fresh.
  void Register(std::vector<Job>* fresh);
  void RetryMoves();
  // Registers files new in deferred/ as deferred jobs (they run only when promoted).
  void ScanDeferred();
  // Registers the next chunk of what ScanDeferred() found.
  void RegisterDeferred();
  // Names asked for by PrioritizeName before discovery registered them.
  void TakeUrgent();
  // A spool name jobs can have: valid UTF-8 (else the file is left alone, with a warning).
  bool UsableName(const std::string& name);
  // Pairs: the first companion of `name` not there yet or not complete ("" when all are, or
  // when one is not a regular file: its job fails at once).
  // Whether NAME, last changed at `mtime_ns`, changed within `quiet_s` of `now` (micros).
  bool ChangedWithin(const std::string& name, int64_t now, int64_t mtime_ns, double quiet_s);
  std::string MissingCompanion(const std::string& name, bool from_scan, int64_t now,
                               bool* absent = nullptr);
  // Examines again the files whose companions are overdue (they are registered, and fail).
  void ExpirePairs();
  // At the end of a drain: registers the files without companions written more than
  // --pair-timeout ago (false: the drain goes on) and names the others, left in the spool.
  bool LeaveUnpaired();
  // Running jobs whose worker stopped heartbeating: run again by another worker (worker.cc).
  void ExpireLeases();
  std::vector<std::string> OldestFirst(const std::vector<std::string>& names);
  // Registers waiting files, oldest first, when the backlog has room again.
  void Refill();
  void MaybeReportProgress(bool force);
  bool BurstFinished();
  // Checks the spool's folders (spool/folders.h); false while it cannot be used. Says so
  // once when that starts and once when it ends, and rescans when the spool comes back.
  bool CheckSpool();
  // worker.cc
  void WorkerLoop();
  void RunJob(Job job, ReadBudget::Grant reading);
  // True (and `job` cancelled as file_replaced) when the job's name holds another file now.
  bool FileReplaced(Job* job);
  // control.cc: cancels or prioritises an HTTP job of a cluster (see there).
  Result<Job> ChangeClusterJob(int64_t id, const std::function<void(Job*)>& change);
  // engine.cc
  // Hands `job`, as it is now, to the writer: its state, with `rows` and `log` lines, and its
  // state event.
  void Record(const Job& job, std::vector<ObjectRow> rows = {}, std::vector<std::string> log = {});
  // Log lines of a running job, without a state change.
  void RecordLog(const Job& job, std::vector<std::string> lines);
  void AfterCommit(WriteBatch& committed, std::vector<Job>& dropped);
  // The mover thread: files of committed final jobs leave the spool, one fsync per batch.
  void MoverLoop();
  // Moves the files of the final jobs `ids` (tracked with move_pending) out of the spool, then
  // forgets the jobs; a failed move stays pending and is retried by RetryMoves.
  void MoveFinished(const std::vector<int64_t>& ids);
  // Discovery: examines the names MoveFile left in the spool as new files.
  void TakeReplaced();
  // Moves the file of a final job (and its companions) out of the spool, unless the name now
  // holds another file: then that name is added to `replaced`.
  Status MoveFile(Tracked* t, std::vector<std::string>* replaced);
  std::string ErrorReport(const Job& job) const;
  // A spool file's identity as stat gives it (creation time included, where known).
  static FileIdentity IdentityOf(const FileInfo& info) {
    return {info.dev, info.ino, info.size, info.mtime_ns, info.btime_ns};
  }

  EngineOptions options_;
  Store* store_;
  Handler* handler_;
  Env* env_;
  Clock* clock_;
  EngineObserver* observer_;
  SpoolDir spool_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Writer> writer_;
  EventHub hub_;
  EventHub* hub_ptr_;  // hub_, or the daemon's shared one
  std::unique_ptr<Watcher> watcher_;

  mutable std::mutex mu_;
  std::unordered_map<int64_t, Tracked> jobs_;  // by id
  std::unordered_map<std::string, int64_t> by_name_;
  // Unfinished jobs sent over HTTP, with their payloads' sizes, and the sizes' sum.
  std::unordered_map<int64_t, size_t> api_jobs_;
  size_t api_bytes_ = 0;
  void TrackApiJobLocked(const Job& j);
  void ForgetApiJobLocked(int64_t id);
  // deferred/ files registered as jobs (state deferred), by name: what promoting one needs.
  // Not in jobs_: a deferred folder may hold millions of files, which run only on request
  // (and are not pending: no metric counts them).
  struct Deferred {
    int64_t id = 0;
    FileIdentity file;
    int max_attempts = 0;
    int priority = 0;
    int64_t created_at = 0;
    std::string queue;
    static Deferred Of(const Job& j) {
      return {j.id, j.file, j.max_attempts, j.priority, j.created_at, j.queue};
    }
  };
  std::unordered_map<std::string, Deferred> deferred_;
  std::vector<std::string> deferred_listed_;  // listed, not registered yet (discovery thread)
  size_t deferred_registered_ = 0;            // since the last listing, for its log line
  // The job of deferred/`name`, as registered.
  Job DeferredJob(const std::string& name, const Deferred& d) const;
  // Promote's move and queueing, without the fsync that makes the move durable.
  Result<Job> TakeFromDeferred(const std::string& name, bool prioritise);
  std::unordered_set<std::string> urgent_;  // to register at top priority, for TakeUrgent
  // Names whose file was replaced while its job ran, to examine again (TakeReplaced).
  std::vector<std::string> replaced_;
  // Names an event named while their job was registered (a producer reusing a name renamed a
  // new file in as the old one left): into replaced_ once the name is free, not left for the
  // next scan.
  std::unordered_set<std::string> came_back_;
  // Discovery thread only: names to register at top priority when they are taken.
  std::unordered_set<std::string> urgent_pending_;
  // Files seen while max_backlog files were registered, oldest first.
  // Discovery thread only; the counts below are for other threads.
  WaitingFiles waiting_;
  std::atomic<size_t> waiting_count_{0};
  std::atomic<int64_t> waiting_oldest_ns_{0};
  // Names of spool files left alone because they are not valid UTF-8 (warned once each).
  // Discovery thread only.
  std::unordered_set<std::string> unusable_names_;
  // Files waiting for their companions. Discovery thread only.
  struct Unpaired {
    int64_t first = 0;    // when first seen (wall micros)
    bool absent = false;  // no companion at all: its arrival (inotify, a scan) says when
  };
  std::map<std::string, Unpaired> unpaired_;
  int64_t last_pair_check_ = 0;
  int64_t last_lease_check_ = 0;
  int64_t last_adopt_ = 0;                           // monotonic micros of the last AdoptOrphans
  std::unordered_map<std::string, bool> unsettled_;  // being written or settling -> from_scan
                                                     // (discovery thread only)
  // Files whose time is ahead of this clock: the time, and when it was first seen so
  // (discovery thread only).
  struct Ahead {
    int64_t mtime_ns;
    int64_t since;  // wall micros
  };
  std::unordered_map<std::string, Ahead> ahead_;
  std::mt19937_64 rng_;
  // Job ids are allocated by the engine (one daemon per database): from its own sequence, or
  // the one the daemon's engines share.
  JobIds own_ids_;
  std::unique_ptr<ReadBudget> own_reading_;
  ReadBudget* reading_;  // own_reading_, or the daemon's shared one
  JobIds* ids_;

  // The last stop was clean (every finished file moved): the startup scan need not look each
  // file up in the store. Recorded in the store's kv map under kCleanStopNs.
  bool clean_start_ = false;
  mutable std::mutex health_mu_;
  Status health_;  // the last CheckSpool's verdict
  int64_t last_spool_check_ = 0;
  uint64_t spool_generation_ = 0;  // the spool directory last watched and scanned
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> started_{false};
  std::vector<std::thread> workers_;
  std::thread discovery_;
  std::thread mover_;
  std::mutex mover_mu_;
  std::condition_variable mover_cv_;
  std::vector<int64_t> mover_queue_;
  bool mover_stop_ = false;
  Status final_status_;
  EngineCounters counters_;
  Histogram processing_seconds_{Histogram::LatencyBounds()};
  Histogram wait_seconds_{Histogram::LatencyBounds()};
  std::vector<int> origin_column_;  // per handler table: index of "origin", or -1
  mutable std::mutex stats_mu_;
  std::map<std::string, uint64_t> failures_by_code_;
  std::map<std::pair<std::string, std::string>, uint64_t> objects_by_origin_;
  int64_t started_at_ = 0;
  int64_t last_progress_ = 0;
  uint64_t last_progress_done_ = 0;
  uint64_t last_progress_objects_ = 0;
  uint64_t last_progress_bytes_ = 0;
};

}  // namespace sluice
