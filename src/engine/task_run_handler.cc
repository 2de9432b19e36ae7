// TaskRunHandler: one task run, on whichever cluster worker claimed its job.
#include "engine/task_run_handler.h"

#include <mutex>

#include "core/json.h"
#include "core/spdlog.h"
#include "engine/task_runs.h"

namespace sluice {

TaskRunHandler::TaskRunHandler(TaskRunOptions options, Store* store,
                               std::vector<std::unique_ptr<Backend>> backends, Clock* clock)
    : options_(std::move(options)), store_(store), backends_(std::move(backends)), clock_(clock) {}

std::string_view TaskRunHandler::kind() const { return kTaskJobKind; }

const std::vector<TableSpec>& TaskRunHandler::tables() const {
  static const std::vector<TableSpec> kNone;
  return kNone;
}

const Backend* TaskRunHandler::FindBackend(const std::string& name) const {
  for (const auto& b : backends_) {
    if (b->name() == name) return b.get();
  }
  return nullptr;
}

Status TaskRunHandler::Save(const HandlerContext& ctx, const Task& task, TaskRun* run,
                            std::vector<TaskItem>* items, const Store::SettleRun& settle) {
  Event e = TaskEvent(task, run, clock_->NowMicros());
  JobFence fence{ctx.job_id, ctx.claim_epoch};
  Status st =
      store_->SaveTask(task, run, items, settle, &e, ctx.claim_epoch != 0 ? &fence : nullptr);
  if (st.ok() && options_.on_events) options_.on_events({e});
  if (st.code() == Code::kFailedPrecondition) {
    spdlog::warn("tasks: run {} of {} not saved: {} (another worker runs it now)", run->job_number,
                 task.task_id, st.message());
  }
  return st;
}

Status TaskRunHandler::Run(const HandlerContext& ctx, HandlerOutput* out) {
  std::string run_id, task_id;
  Status st = ParseTaskJobPayload(ctx.payload != nullptr ? *ctx.payload : "", &run_id, &task_id);
  if (!st.ok()) {
    out->error_code = "invalid_task_job";
    return st;
  }
  auto skip = [out](const std::string& why) {
    out->summary = "{\"skipped\":" + JsonQuote(why) + "}";
    out->log.push_back("skipped: " + why);
    return Status::Ok();
  };
  auto task = store_->GetTask(task_id);
  if (task.status().IsNotFound()) return skip("task " + task_id + " was removed");
  if (!task.ok()) return task.status();
  if (task->current_job != run_id) {
    return skip("run " + run_id + " is no longer the current run of task " + task_id);
  }
  auto run = store_->GetTaskRun(run_id);
  if (!run.ok()) return run.status();
  if (run->status != RunStatus::kQueued && run->status != RunStatus::kStarted) {
    return skip("run " + run_id + " has ended (" + RunStatusName(run->status) + ")");
  }
  int64_t now = clock_->NowMicros();
  bool again = run->status == RunStatus::kStarted;
  run->status = RunStatus::kStarted;
  run->started_at = now;
  run->lease_until = SatAdd(now, SecondsToMicros(options_.lease_s));
  AddRunLog(
      &*run, now,
      again ? "started again on queue " + run->queue + " by " + options_.owner +
                  " (its previous worker went away mid-run)"
            : "started on queue " + run->queue + " by " + options_.owner + " with " + run->args);
  Task next = *task;
  next.status = TaskStatus::kRunning;
  st = Save(ctx, next, &*run);
  if (st.IsNotFound()) return skip("task " + task_id + " was removed");
  SLUICE_RETURN_IF_ERROR(st);

  std::mutex log_mu;
  ItemTally stored;     // the batches stored while it ran
  Status batch_status;  // the last batch's
  Result<std::vector<TaskItem>> items = Status::FailedPrecondition(
      "this worker has no backend '" + next.backend + "' (it has the others' backends?)");
  if (const Backend* backend = FindBackend(next.backend)) {
    FetchRequest req;
    req.task_id = next.task_id;
    req.category = next.category;
    req.args = run->args;
    req.from_archive = next.fetch_from_archive;
    req.tick = ctx.heartbeat ? ctx.heartbeat : [] {};
    req.log = [&](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu);
      AddRunLog(&*run, clock_->NowMicros(), line);
    };
    // A batch is stored with the run still started and the task's cursor where it was: a run
    // cut short is run again from there, and what it stored is not stored twice (uuids).
    req.save = [&](std::vector<TaskItem>* batch) {
      JobFence fence{ctx.job_id, ctx.claim_epoch};
      {
        std::lock_guard<std::mutex> lock(log_mu);
        AddRunLog(&*run, clock_->NowMicros(),
                  "storing " + std::to_string(batch->size()) + " items (" +
                      std::to_string(stored.items) + " stored before)");
      }
      batch_status = store_->SaveTask(next, &*run, batch, nullptr, nullptr,
                                      ctx.claim_epoch != 0 ? &fence : nullptr);
      if (batch_status.ok()) stored.Add(*batch);
      return batch_status;
    };
    items = const_cast<Backend*>(backend)->Fetch(req);
  }
  now = clock_->NowMicros();
  if (!batch_status.ok()) {
    if (batch_status.IsNotFound()) return skip("task " + task_id + " was removed during the run");
    // Fenced out, or the store away: as for the run's last items (below).
    if (batch_status.code() == Code::kFailedPrecondition || batch_status.IsTransient()) {
      return batch_status;
    }
  }
  if (!items.ok()) {
    SettleFailedRun(&next, &*run, items.status().message(), now, options_.retry_delay_s);
    st = Save(ctx, next, &*run);
    if (st.IsNotFound()) return skip("task " + task_id + " was removed during the run");
    SLUICE_RETURN_IF_ERROR(st);
    out->error_code = "task_run_failed";
    return Status::FailedPrecondition("run " + std::to_string(run->job_number) + " of task " +
                                      task_id + " failed: " + items.status().message());
  }
  Task done = next;
  TaskRun started = *run;
  Store::SettleRun settle = SettleSucceededRun(&done, &*run, &*items, now, stored);
  st = Save(ctx, done, &*run, &*items, settle);
  if (st.IsNotFound()) return skip("task " + task_id + " was removed during the run");
  // Fenced out: nothing stored, and the job's own result is dropped by the same fence. The
  // store away: the job is tried again, and its next try runs the run again.
  if (st.code() == Code::kFailedPrecondition || st.IsTransient()) return st;
  if (!st.ok()) {
    // Refused for good: nothing of the run was kept, so it counts as a failed run.
    *run = std::move(started);
    SettleFailedRun(&next, &*run, "storing its items: " + st.ToString(), now,
                    options_.retry_delay_s);
    SLUICE_RETURN_IF_ERROR(Save(ctx, next, &*run));
    out->error_code = "task_run_failed";
    return Status::FailedPrecondition("run " + std::to_string(run->job_number) + " of task " +
                                      task_id + ": storing its items: " + st.message());
  }
  int64_t all = stored.items + static_cast<int64_t>(items->size());
  spdlog::info("tasks: run {} of {} finished here: {} items", run->job_number, task_id, all);
  out->summary = run->result;
  out->objects = static_cast<uint64_t>(all);
  return Status::Ok();
}

}  // namespace sluice
