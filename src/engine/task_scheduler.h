// TaskScheduler: King Arthur's recurring tasks, durable. Each task runs again `delay` seconds
// after its previous run ended; a successful run advances the task's cursor (next_from_date,
// next_offset) so the next one fetches only what is new; a failed run is retried with
// exponential backoff until max_retries; max_age runs end the task. Runs wait in the queues
// archive, create, retry and update (chosen as Arthur does), served in that order.
//
// Everything is in the store: tasks, runs and items survive restarts (Arthur wipes its state
// at start). A run holds a lease its worker renews while it works; a run whose lease ran out
// (its worker stuck) or whose daemon died (found started at restart) counts as a failed run
// and is retried.
//
// Threads: one scheduler thread (due tasks → queued runs, lease checks) and `workers` workers
// (none in a cluster: TaskOptions::dispatch).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker/items_out.h"
#include "core/clock.h"
#include "engine/shared.h"
#include "engine/task_runs.h"
#include "handlers/backend.h"
#include "store/store.h"

namespace sluice {

// A task id as a file name (its JSON-lines export): percent-encoded, no leading dot, and
// under 255 bytes whatever the id (a long one is cut and ends with a digest of it).
std::string TaskFileName(const std::string& id);

struct TaskOptions {
  int workers = 2;
  double lease_s = 60;            // a run's worker must renew its lease within this
  double retry_delay_s = 10;      // after a failed run; doubles each time, at most an hour
  std::string items_dir;          // when set: each task's items also go to DIR/<task_id>.jsonl
  ItemsOut* items_out = nullptr;  // when set: each task's items also go there (a Redis list)
  double job_timeout_s = 3600;    // what one backend command may take (shown as a run's timeout)
  // A cluster: each queued run is registered through `dispatch` as a job of kind "task"
  // (engine/task_runs.h) in the run's queue, which any worker of that queue runs
  // (engine/task_run_handler.h); this process runs no run itself. It follows its runs in
  // the store: a task a worker settled is taken as stored (and its items exported from here);
  // a run whose job ended without settling it (a dead letter, a cancel) fails as any run.
  std::function<Status(const TaskRun&)> dispatch;
  double job_check_s = 10;  // how often a followed run's job is read, at most
  // Every stored task is held in memory: beyond either bound, Add refuses more
  // (FailedPrecondition) until some are removed. Recovered tasks count, and are all kept.
  size_t max_tasks = 100000;
  size_t max_task_bytes = 256u << 20;  // their TaskBytes, in all
  // Each task's ended runs beyond its newest runs_kept are deleted (every tenth of that many
  // runs): a task run every few seconds would otherwise grow the database, the start (which
  // reads every run) and GET /tasks without end.
  int64_t runs_kept = 1000;
};

// What a task is counted as against TaskOptions::max_task_bytes: its fields as given.
size_t TaskBytes(const Task& t);

class TaskScheduler {
 public:
  // `shared.hub` (with `shared.commit_order`): task state changes also go out as events of
  // kind "task" ("task.scheduled", "task.running", …), committed with the change.
  TaskScheduler(TaskOptions options, Store* store, std::vector<std::unique_ptr<Backend>> backends,
                Clock* clock, EngineShared shared = {});
  ~TaskScheduler();

  const TaskOptions& options() const { return options_; }

  // Recovers the tasks in the store and starts the threads.
  Status Start();
  // Stops the threads; a run in progress is abandoned (it is retried at the next start).
  void Stop();
  // Started and not stopped: its tasks run here (on a shared database, one daemon's do).
  bool running() const { return running_.load(); }

  const Backend* FindBackend(const std::string& name) const;
  std::vector<std::string> BackendNames() const;
  // Adds checked tasks, all or none (AlreadyExists naming a task id taken, FailedPrecondition
  // when they do not fit under max_tasks and max_task_bytes), and schedules them to run now.
  Status Add(std::vector<Task> tasks);
  // For each id: whether it was removed.
  std::vector<std::pair<std::string, bool>> Remove(const std::vector<std::string>& ids);
  // For each id: whether it was rescheduled (FAILED tasks only, as Arthur: age and failures
  // start again from 0, the cursor stays).
  std::vector<std::pair<std::string, bool>> Reschedule(const std::vector<std::string>& ids);

 private:
  void SchedulerLoop();
  void WorkerLoop();
  // With mu_ held (released while it is stored): creates the next run of task `id`, if it is
  // still SCHEDULED and due, and queues it.
  Status Enqueue(std::unique_lock<std::mutex>* lock, const std::string& id, int64_t now);
  // With mu_ held: a run that failed (or whose lease ran out); schedules a retry or fails the
  // task.
  void FailRun(Task* task, TaskRun* run, const std::string& error, int64_t now);
  // With mu_ held: the run succeeded with `items`.
  void SucceedRun(Task* task, TaskRun* run, std::vector<TaskItem>* items, int64_t now,
                  const ItemTally& earlier);
  // Stores a batch of the items of run `job_id` while it runs (FetchRequest::save).
  Status SaveBatch(const std::string& job_id, std::vector<TaskItem>* batch, ItemTally* tally);
  void RunOne(const std::string& job_id);
  // The end of run `job_id`, its fetch done with `items` (after the batches in `stored`):
  // whether it finished (false: failed, or dropped as retried or removed meanwhile).
  bool Settle(const std::string& job_id, const std::string& task_id,
              Result<std::vector<TaskItem>>* items, const ItemTally& stored);
  // Appends the task's items not exported yet to its JSON-lines file and to items_out; one
  // that fails is tried again every second (RetryExports) until it works.
  void ExportItems(const std::string& task_id, int64_t task_seq);
  Status ExportItemsFile(const std::string& task_id, int64_t task_seq);
  Status ExportItemsOut(const std::string& task_id, int64_t task_seq);
  // Scheduler thread, mu_ held (released while it exports).
  void RetryExports(std::unique_lock<std::mutex>* lock);
  bool PopRun(std::string* job_id);  // mu_ held
  // Scheduler thread, mu_ held (released while they call out): with `dispatch`, registers the
  // runs not registered yet, and every second follows the runs out in the cluster.
  void DispatchRuns(std::unique_lock<std::mutex>* lock);
  void FollowRuns(std::unique_lock<std::mutex>* lock);
  // Stores `task` (with `run`, `items`) and, with a hub, its state as an event.
  Status Save(const Task& task, TaskRun* run, std::vector<TaskItem>* items = nullptr,
              const Store::SettleRun& settle = nullptr);
  // Calls `write` with the state events of `tasks` to store in its transaction (none without
  // a hub) and publishes them once written, in id order with the other writers' events.
  Status WithEvents(const std::vector<Task>& tasks, int64_t now,
                    const std::function<Status(std::vector<Event>*)>& write);

  TaskOptions options_;
  std::atomic<bool> running_{false};
  Store* store_;
  std::vector<std::unique_ptr<Backend>> backends_;
  Clock* clock_;
  EngineShared shared_;

  std::mutex mu_;
  std::condition_variable sched_cv_;
  std::condition_variable work_cv_;
  bool stop_ = false;
  std::map<std::string, Task> tasks_;    // every stored task, by id
  size_t held_tasks_ = 0;                // tasks_ and those being added (their room taken)
  size_t held_bytes_ = 0;                // their TaskBytes
  std::map<std::string, TaskRun> runs_;  // runs queued or started, by job id
  std::map<int64_t, int> last_number_;   // task seq -> its last job number
  std::map<std::pair<int, std::string>, std::deque<std::string>> queues_;  // (rank, queue)
  std::map<std::string, TaskRun> undispatched_;  // with `dispatch`: runs to register, by id
  int64_t followed_at_ = 0;                      // monotonic micros
  std::map<std::string, int64_t> job_checked_;   // run id -> when its job was last read
  std::mutex export_mu_;
  std::set<std::pair<std::string, int64_t>> export_retry_;  // (task id, seq), under mu_
  int64_t export_retry_at_ = 0;
  std::thread scheduler_;
  std::vector<std::thread> workers_;
};

}  // namespace sluice
