// Writer: the ONE thread that writes to the store. It group-commits whatever has queued up
// (new jobs, claims, results with their rows) in one transaction, so many jobs share one fsync.
//
// A batch the store rejects for a permanent reason is split in halves until the bad job is
// alone; that job alone is marked failed (its rows dropped) and the rest commit. A transient
// failure (database busy, disk full) retries the same batch with backoff; nothing is dropped.
// Registrations always commit no later than any update queued after them.
// After each commit, `after_commit` runs on the writer thread with what was committed
// (committed.appended: the events written, in id order).
// Between commits it prunes what is past the retention (Retention). Rows waiting to be
// written are bounded (Update).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "engine/retention.h"
#include "store/store.h"

namespace sluice {

class Writer {
 public:
  // `dropped`: new jobs the store refused to register (their files stay where they are).
  using AfterCommit = std::function<void(WriteBatch& committed, std::vector<Job>& dropped)>;

  // `commit_order`, when given, is held from each commit to the end of its after_commit (other
  // writers of the same database hold it too, so events are published in id order).
  Writer(Store* store, size_t max_batch, AfterCommit after_commit, Env* env, Clock* clock,
         RetentionOptions retention, std::mutex* commit_order = nullptr);
  ~Writer();

  // Every batch is written under these role leases (WriteBatch::holds); when the store says
  // one was taken over, `lost` runs (it must stop the daemon: nothing more may be written).
  void HoldLeases(std::string holder, std::vector<std::pair<std::string, int64_t>> holds,
                  std::function<void(const Status&)> lost);

  void Start();
  // The daemon is stopping: from now on, writes that keep failing are retried for kStopGrace
  // only, then given up (Abandoned). Everything that can be written still is.
  void BeginStop();
  static constexpr std::chrono::seconds kStopGrace{10};
  // Commits everything queued (see BeginStop), then stops the thread.
  void StopAndDrain();
  // Whether its retention has ended jobs left to prune (Retention::CatchingUp).
  bool PruningCatchingUp() const { return retention_.CatchingUp(); }
  // Why the writes were given up at a stop (nothing was written from then on, as after a
  // crash: what was not committed is taken again at the next start); OK when they were not.
  Status Abandoned() const;

  // Queues registrations. `done`, if given, runs on the writer thread once they committed
  // (OK) or were refused (the store's error).
  void AddJobs(std::vector<Job> jobs, std::function<void(const Status&)> done = nullptr);
  // Queues an update. One that carries rows waits while kMaxRowBytes of rows are queued or
  // being written: workers that outrun the store wait for it instead of holding every
  // file's rows in memory (a burst of large submissions, a slow or unreachable database).
  void Update(JobUpdate update);
  static constexpr size_t kMaxRowBytes = 16 << 20;
  // What the rows of `u` hold in memory, roughly.
  static size_t RowBytes(const JobUpdate& u);
  // Items queued and not yet committed.
  size_t Pending() const;
  // While the store's writes fail and are retried (a full disk, a lost database): the last
  // error; empty while they work.
  std::string Failing() const;

 private:
  void Loop();
  // Writes `batch`, splitting on permanent errors; returns what was committed.
  void WriteSplitting(WriteBatch* batch, WriteBatch* committed);
  // Writes `batch`, retrying transient errors; the permanent error, if any.
  Status WriteWithRetry(WriteBatch* batch, WriteBatch* committed);
  // After a transient failure: true (abandoned_ set) once a stop's grace has passed.
  bool GiveUp(const Status& st);
  // A job's claim and its result in one batch: only the result is written, with both events.
  static void MergeUpdates(std::vector<JobUpdate>* updates);
  // The job of `u` failed instead (store_rejected): its state event says so.
  static void FailStateEvent(JobUpdate* u);

  Store* store_;
  std::string holder_;
  std::vector<std::pair<std::string, int64_t>> holds_;
  std::function<void(const Status&)> lost_;
  size_t max_batch_;
  AfterCommit after_commit_;
  std::mutex* commit_order_;
  Clock* clock_;
  Retention retention_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Job> new_jobs_;
  std::deque<JobUpdate> updates_;  // taken from the front, max_batch at a time
  std::vector<Job> dropped_;       // writer thread only
  struct Waiter {
    std::vector<int64_t> ids;
    std::function<void(const Status&)> done;
  };
  std::vector<Waiter> waiters_;
  std::map<int64_t, Status> refusals_;  // writer thread only: why each dropped job was refused
  size_t in_flight_ = 0;
  std::condition_variable room_cv_;      // row bytes fell under kMaxRowBytes
  size_t row_bytes_ = 0;                 // RowBytes of the updates queued and in flight
  std::string failing_;                  // see Failing()
  std::atomic<bool> is_failing_{false};  // failing_ is not empty: a lock-free look for submissions
  bool stopping_ = false;
  std::optional<std::chrono::steady_clock::time_point> stop_deadline_;  // BeginStop's
  Status abandoned_;                                                    // see Abandoned()
  std::thread thread_;
};

}  // namespace sluice
