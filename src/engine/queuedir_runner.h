// QueuedirRunner: runs the items of a Mozilla queuedir (spool/queuedir.h) through a handler,
// as command_runner does, with the file system as the queue and the store as the record.
//
// Items in new/ are claimed (renamed into cur/, their time renewed) only when a worker is
// free, oldest first. Items in cur/ (running, or waiting for a retry) are touched every second,
// as command_runner touches them: Mozilla's producers move items older than cleanup_time out
// of cur/. An attempt that succeeds is recorded as succeeded, then its item is deleted; one
// whose item left cur/ meanwhile is a conflict, not a success. One that fails with an error
// that may pass (a non-zero exit, a command that cannot start, a timeout) waits in cur/ for
// `retry_time_s` (in the store: the wait survives restarts), then goes back into new/ as
// <id>.<retries>; past `max_retries` retries, or at once for input that is not a job, it goes
// to dead/ with its log as dead/<item>.log. Every attempt's output goes to logs/<id>.log in
// command_runner's format, one log per item, and to the job's events.
//
// After a crash, items found in cur/ were in progress: the attempt counts (the original
// retried them forever), and max_retries holds; an item whose success was recorded is only
// deleted, never run again; one that was waiting for its retry waits on.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/env.h"
#include "engine/shared.h"
#include "handlers/handler.h"
#include "spool/queuedir.h"
#include "store/store.h"

namespace sluice {

struct QueuedirOptions {
  std::string dir;
  int workers = 1;
  int max_retries = 10;
  double retry_time_s = 60;
  std::string queue = "default";
  uint64_t max_file_bytes = 512ull << 20;
  // The queuedir deleted and created again is locked before it is taken (EngineOptions).
  Folders::Lock dir_lock = Folders::Lock::kNone;
};

struct QueuedirCounters {
  std::atomic<uint64_t> succeeded{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> dead{0};
};

class QueuedirRunner {
 public:
  QueuedirRunner(QueuedirOptions options, Store* store, Handler* handler, Env* env, Clock* clock,
                 EngineShared shared = {});
  ~QueuedirRunner();

  // Prepares the directories, settles what a crash left in cur/, starts the threads.
  Status Start();
  // Stops claiming; attempts in progress finish. Returns when every thread has ended.
  void Stop();
  const QueuedirCounters& counters() const { return counters_; }
  // The jobs it keeps in memory (unfinished ones, ids it knows stored): those of the items in
  // flight only, whatever ran before.
  size_t JobsHeld() const;
  // OK while the queuedir is usable; else why not (what /readyz answers).
  Status Health() const;
  const std::string& root() const { return dir_.root(); }

 private:
  void DispatchLoop();
  // Renews the time of every item in cur/ this runner holds (running or waiting).
  void TouchAll();
  // Moves the waiting items due by `now` into new/; when the next one is due (0: none).
  int64_t RequeueDue(int64_t now);
  // Checks the folders; false while the queuedir cannot be used (said once, when it starts
  // and when it ends).
  bool CheckFolders();
  // new/'s items as the dispatcher knows them (new_items_): listed whole at times, and
  // between listings told by the watcher what came.
  void RescanNew(int64_t now);
  void NoteNew(const std::vector<std::string>& names);
  void WorkerLoop();
  void RunItem(const std::string& item);
  Status Recover();
  // The job of item `item` (its id without the retry suffix), created when new.
  Job JobFor(const std::string& item);
  // Commits `job` as it is now, with its state event and `log` lines as events.
  Status Save(const Job& job, const std::vector<std::string>& log, bool with_state = true);
  // Forgets job `id` before its item leaves cur/ for good (deleted, or moved to dead/): from
  // then on an item with its id (`sluice retry-dead`, a producer adding it again) is a new job,
  // not this one's next attempt.
  void EndJob(const std::string& id);
  // An attempt that failed: requeued, or to dead/ when `permanent` or out of retries.
  void Fail(Job* job, const std::string& item, const Status& st, const HandlerOutput& out,
            bool permanent);

  QueuedirOptions options_;
  QueueDir dir_;
  Store* store_;
  Handler* handler_;
  Env* env_;
  Clock* clock_;

  // The items waiting in new/, oldest first (modification time, then name), kept by the
  // dispatcher thread alone. Listing and stat'ing all of new/ for every claim made a backlog
  // of N items cost N^2: 20,000 items ran at 26 a second.
  std::set<std::pair<int64_t, std::string>> new_items_;
  std::map<std::string, int64_t> new_mtime_;  // item -> its time in new_items_
  int64_t next_rescan_ = 0;                   // when new/ is listed whole again

  mutable std::mutex mu_;
  std::condition_variable cv_;              // workers: an item was claimed, or stop
  std::condition_variable dispatch_cv_;     // the dispatcher: a worker became free, or stop
  std::deque<std::string> claimed_;         // in cur/, waiting for a worker
  int idle_ = 0;                            // workers waiting for an item
  std::map<std::string, Job> jobs_;         // by item id (no suffix): unfinished jobs
  std::set<std::string> running_;           // items in cur/ being run
  std::map<std::string, int64_t> waiting_;  // items in cur/ waiting for a retry -> when due
  std::set<int64_t> stored_;                // job ids the store has (else the next save inserts)
  JobIds own_ids_;
  EngineShared shared_;  // ids always set (own_ids_ when not shared)
  bool stop_ = false;
  mutable std::mutex health_mu_;
  Status health_;
  std::atomic<bool> cancelled_{false};
  std::thread dispatcher_;
  std::vector<std::thread> workers_;
  QueuedirCounters counters_;
};

}  // namespace sluice
