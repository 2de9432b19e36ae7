// The rules of one recurring task's run, shared by the process that runs it: the scheduler's
// own workers (engine/task_scheduler.h) or, in a cluster, any worker that takes the run's job
// (engine/task_run_handler.h). Each function computes; the caller stores.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/event.h"
#include "store/store.h"
#include "store/task.h"

namespace sluice {

// A new run id (Arthur's job ids are UUIDs).
std::string NewRunId();
// The task's backend_args with its cursor applied: what its next run fetches from.
std::string ArgsForRun(const Task& task);
// The queue a task's next run waits in: its own, else archive, retry, update or create.
std::string QueueFor(const Task& task);
// Appends "TIME line" to the run's log.
void AddRunLog(TaskRun* run, int64_t now, const std::string& line);

// The run failed with `error`: it ends, and the task is scheduled again after
// retry_delay_s * 2^(failures-1) (at most an hour), or FAILS after max_retries in a row.
// Logs which.
void SettleFailedRun(Task* task, TaskRun* run, const std::string& error, int64_t now,
                     double retry_delay_s);
// What a run's items came to: those stored in batches while it ran (FetchRequest::save),
// counted as each batch committed, then its last ones.
struct ItemTally {
  int64_t items = 0;               // in all, new or already stored
  int64_t fetched = 0;             // new to the task
  int64_t newest = 0;              // the largest updated_on in range (the next cursor)
  int64_t min_on = 0, max_on = 0;  // of the new ones
  int64_t last_on = 0;             // the last new one's
  std::string last_uuid;
  // `items` once stored (the store set the seq of those that were new).
  void Add(const std::vector<TaskItem>& items);
};

// The run succeeded with `items` (its last ones, after `earlier`): `*task` becomes the task's
// next state (cursor advanced, scheduled again, or COMPLETED); the returned function fills in
// the run's summary inside the transaction that stores the items (only then is it known which
// were new).
Store::SettleRun SettleSucceededRun(Task* task, TaskRun* run, std::vector<TaskItem>* items,
                                    int64_t now, const ItemTally& earlier = {});

// The event ("task.scheduled", "task.running", …, kind "task") a task's new state goes out
// as, with its run when given.
Event TaskEvent(const Task& task, const TaskRun* run, int64_t ts);

// A cluster carries each run as a job of kind "task": its payload names the run, and its
// idempotency key makes dispatching the same run twice register one job.
constexpr char kTaskJobKind[] = "task";
std::string TaskJobKey(const std::string& run_id);
std::string TaskJobPayload(const TaskRun& run);
// Reads a payload TaskJobPayload wrote; InvalidArgument for anything else.
Status ParseTaskJobPayload(const std::string& payload, std::string* run_id, std::string* task_id);

}  // namespace sluice
