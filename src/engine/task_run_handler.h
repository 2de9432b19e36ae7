// TaskRunHandler: runs a recurring task's run on any worker of a cluster. The scheduler
// (engine/task_scheduler.h, on the process holding the "scheduler" lease) registers each due
// run as a job of kind "task" in the run's queue; whichever worker claims that job runs the
// run here: marks it started, fetches through the task's backend, and stores the items, the
// run and the task's next state in one transaction, by the rules of engine/task_runs.h.
//
// Every write is fenced on the job's claim (Store::SaveTask with a JobFence): a worker paused
// past its lease, whose job another worker took over, stores nothing, neither items nor state.
// A worker that dies mid-run leaves the run started; the job's next delivery (another worker)
// runs it again from the same cursor, and items already stored are not stored twice.
//
// The job itself ends succeeded when the run did, failed (no retry: the task's own schedule
// retries) when the run failed, and succeeded with a "skipped" summary when the run is no
// longer the task's current one (the task was removed, or moved on).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "handlers/backend.h"
#include "handlers/handler.h"
#include "store/store.h"

namespace sluice {

struct TaskRunOptions {
  std::string owner;          // this process, for the run's log
  double lease_s = 15;        // shown as the run's lease
  double retry_delay_s = 10;  // after a failed run (doubles), as the scheduler's
  // Each committed task event (a cluster sends them to the other processes).
  std::function<void(const std::vector<Event>&)> on_events;
};

class TaskRunHandler : public Handler {
 public:
  TaskRunHandler(TaskRunOptions options, Store* store,
                 std::vector<std::unique_ptr<Backend>> backends, Clock* clock);
  std::string_view kind() const override;
  const std::vector<TableSpec>& tables() const override;
  Status Run(const HandlerContext& ctx, HandlerOutput* out) override;

 private:
  // Stores the task's new state with the run (and items), fenced on the job's claim, with its
  // event.
  Status Save(const HandlerContext& ctx, const Task& task, TaskRun* run,
              std::vector<TaskItem>* items = nullptr, const Store::SettleRun& settle = nullptr);
  const Backend* FindBackend(const std::string& name) const;

  TaskRunOptions options_;
  Store* store_;
  std::vector<std::unique_ptr<Backend>> backends_;
  Clock* clock_;
};

}  // namespace sluice
