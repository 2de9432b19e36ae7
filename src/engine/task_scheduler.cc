// TaskScheduler: due tasks become queued runs; workers run them through their backend.
#include "engine/task_scheduler.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/json.h"
#include "core/percent.h"
#include "core/spdlog.h"
#include "engine/task_runs.h"

namespace sluice {
namespace {

constexpr const char* kExportNs = "items_jsonl";  // task id -> "seq last_item_seq file_size"

int QueueRank(const std::string& q) {
  static const char* kOrder[] = {"archive", "create", "retry", "update"};
  for (int i = 0; i < 4; ++i) {
    if (q == kOrder[i]) return i;
  }
  return 4;
}

}  // namespace

TaskScheduler::TaskScheduler(TaskOptions options, Store* store,
                             std::vector<std::unique_ptr<Backend>> backends, Clock* clock,
                             EngineShared shared)
    : options_(std::move(options)),
      store_(store),
      backends_(std::move(backends)),
      clock_(clock),
      shared_(shared) {}

Status TaskScheduler::Save(const Task& task, TaskRun* run, std::vector<TaskItem>* items,
                           const Store::SettleRun& settle) {
  if (shared_.hub == nullptr) return store_->SaveTask(task, run, items, settle);
  Event e = TaskEvent(task, run, clock_->NowMicros());
  // In id order with the spools' events on the one stream.
  std::unique_lock<std::mutex> order;
  if (shared_.commit_order != nullptr) order = std::unique_lock<std::mutex>(*shared_.commit_order);
  Status st = store_->SaveTask(task, run, items, settle, &e);
  if (st.ok()) shared_.hub->Publish({e});
  return st;
}

Status TaskScheduler::WithEvents(const std::vector<Task>& tasks, int64_t now,
                                 const std::function<Status(std::vector<Event>*)>& write) {
  if (shared_.hub == nullptr) return write(nullptr);
  std::vector<Event> events;
  for (const Task& t : tasks) events.push_back(TaskEvent(t, nullptr, now));
  std::unique_lock<std::mutex> order;
  if (shared_.commit_order != nullptr) order = std::unique_lock<std::mutex>(*shared_.commit_order);
  Status st = write(&events);
  if (st.ok()) shared_.hub->Publish(events);
  return st;
}

TaskScheduler::~TaskScheduler() { Stop(); }

const Backend* TaskScheduler::FindBackend(const std::string& name) const {
  for (const auto& b : backends_) {
    if (b->name() == name) return b.get();
  }
  return nullptr;
}

std::vector<std::string> TaskScheduler::BackendNames() const {
  std::vector<std::string> names;
  for (const auto& b : backends_) names.emplace_back(b->name());
  return names;
}

size_t TaskBytes(const Task& t) {
  return t.task_id.size() + t.backend.size() + t.category.size() + t.backend_args.size() +
         t.archive.size();
}

Status TaskScheduler::Start() {
  auto tasks = store_->ListTasks();
  if (!tasks.ok()) return tasks.status().Annotate("loading tasks");
  int64_t now = clock_->NowMicros();
  int recovered = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Task& t : *tasks) {
      // Its last run's number and its current run only (not every run kept, logs and all).
      auto last = store_->ListTaskRunIds(t.seq, 1);
      if (!last.ok()) return last.status().Annotate("loading the runs of task " + t.task_id);
      last_number_[t.seq] = last->empty() ? 0 : last->back().job_number;
      std::optional<TaskRun> run;
      if (!t.current_job.empty()) {
        auto current = store_->GetTaskRun(t.current_job);
        if (current.ok() && current->task_seq == t.seq) {
          run = std::move(*current);
        } else if (!current.ok() && current.status().code() != Code::kNotFound) {
          return current.status().Annotate("loading the current run of task " + t.task_id);
        }
      }
      held_tasks_ += 1;
      held_bytes_ += TaskBytes(t);
      Task& task = tasks_[t.task_id] = std::move(t);
      if (task.status == TaskStatus::kEnqueued && run && run->status == RunStatus::kQueued) {
        if (options_.dispatch) {
          undispatched_[run->job_id] = *run;  // registered once, whether it was or not
        } else {
          runs_[run->job_id] = *run;
          queues_[{QueueRank(run->queue), run->queue}].push_back(run->job_id);
        }
        ++recovered;
      } else if (options_.dispatch &&
                 (task.status == TaskStatus::kEnqueued || task.status == TaskStatus::kRunning) &&
                 run) {
        // Its job is in the cluster, held by a worker or waiting for one: followed.
        ++recovered;
      } else if (task.status == TaskStatus::kRunning && run) {
        // Its worker died with the daemon: the lease is void.
        FailRun(&task, &*run, "interrupted: the daemon stopped during this run", now);
        ++recovered;
      } else if (task.status == TaskStatus::kNew || task.status == TaskStatus::kEnqueued ||
                 task.status == TaskStatus::kRunning) {
        task.status = TaskStatus::kScheduled;
        task.next_run_at = now;
        task.current_job.clear();
        Status st = Save(task, nullptr, nullptr);
        if (!st.ok()) return st.Annotate("scheduling task " + task.task_id);
      }
    }
  }
  if (!tasks_.empty()) {
    spdlog::info("tasks: {} recurring tasks, {} runs recovered", tasks_.size(), recovered);
  }
  if (!options_.items_dir.empty()) mkdir(options_.items_dir.c_str(), 0755);
  if (!options_.items_dir.empty() || options_.items_out != nullptr) {
    // What a dead daemon committed and did not export yet.
    for (const auto& [id, t] : tasks_) ExportItems(id, t.seq);
  }
  scheduler_ = std::thread([this] { SchedulerLoop(); });
  if (!options_.dispatch) {
    for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }
  running_ = true;
  return Status::Ok();
}

void TaskScheduler::Stop() {
  running_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  sched_cv_.notify_all();
  work_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

Status TaskScheduler::Add(std::vector<Task> tasks) {
  int64_t now = clock_->NowMicros();
  size_t bytes = 0;
  for (Task& t : tasks) {
    t.created_on = now;
    t.status = TaskStatus::kScheduled;  // to run now; stored so in the one transaction
    t.next_run_at = now;
    bytes += TaskBytes(t);
  }
  {
    // Their room is taken before they are stored, so batches added at once cannot pass the
    // bounds together.
    std::lock_guard<std::mutex> lock(mu_);
    if (held_tasks_ + tasks.size() > options_.max_tasks) {
      return Status::FailedPrecondition(
          std::to_string(held_tasks_) + " tasks are stored here and " +
          std::to_string(tasks.size()) + " more would pass --max-tasks " +
          std::to_string(options_.max_tasks) + "; remove some (POST /remove) or raise it");
    }
    if (held_bytes_ + bytes > options_.max_task_bytes) {
      return Status::FailedPrecondition(
          "the stored tasks' fields take " + std::to_string(held_bytes_) + " bytes and these " +
          std::to_string(bytes) + " more would pass --max-task-bytes " +
          std::to_string(options_.max_task_bytes) + "; remove some (POST /remove) or raise it");
    }
    held_tasks_ += tasks.size();
    held_bytes_ += bytes;
  }
  // One transaction for the whole batch, events included (a commit each made adding 5,000
  // tasks take 1.7 s, the API waiting meanwhile).
  Status stored = WithEvents(
      tasks, now, [&](std::vector<Event>* events) { return store_->AddTasks(&tasks, events); });
  std::lock_guard<std::mutex> lock(mu_);
  if (!stored.ok()) {
    held_tasks_ -= tasks.size();
    held_bytes_ -= bytes;
    return stored;
  }
  for (Task& t : tasks) {
    last_number_[t.seq] = 0;
    spdlog::info("tasks: added {} ({} {})", t.task_id, t.backend, t.category);
    tasks_[t.task_id] = std::move(t);
  }
  sched_cv_.notify_all();
  return Status::Ok();
}

std::vector<std::pair<std::string, bool>> TaskScheduler::Remove(
    const std::vector<std::string>& ids) {
  std::vector<std::pair<std::string, bool>> out;
  std::lock_guard<std::mutex> lock(mu_);
  // One transaction for them all (a commit each made removing thousands take seconds, the
  // API waiting meanwhile).
  auto removed = store_->RemoveTasks(ids);
  if (!removed.ok()) {
    spdlog::error("tasks: removing {} tasks: {}", ids.size(), removed.status().ToString());
  }
  std::set<std::string> cancelled;  // their runs waiting in the queues
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    bool gone = removed.ok() && (*removed)[i];
    out.emplace_back(id, gone);
    if (!gone) continue;
    auto it = tasks_.find(id);
    if (it != tasks_.end()) {
      held_tasks_ -= 1;
      held_bytes_ -= TaskBytes(it->second);
      runs_.erase(it->second.current_job);  // a running worker finds it gone and drops its result
      undispatched_.erase(it->second.current_job);
      if (!it->second.current_job.empty()) cancelled.insert(it->second.current_job);
      tasks_.erase(it);
    }
    spdlog::info("tasks: removed {}", id);
  }
  if (!cancelled.empty()) {
    for (auto& [key, q] : queues_) {
      std::erase_if(q, [&](const std::string& job) { return cancelled.count(job) > 0; });
    }
  }
  return out;
}

std::vector<std::pair<std::string, bool>> TaskScheduler::Reschedule(
    const std::vector<std::string>& ids) {
  std::vector<std::pair<std::string, bool>> out;
  int64_t now = clock_->NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Task> again;
  std::set<std::string> taken;  // an id given twice is rescheduled once
  for (const std::string& id : ids) {
    auto it = tasks_.find(id);
    bool failed = it != tasks_.end() && it->second.status == TaskStatus::kFailed;
    out.emplace_back(id, failed && taken.insert(id).second);
    if (!out.back().second) continue;
    Task t = it->second;
    t.status = TaskStatus::kScheduled;
    t.age = 0;
    t.num_failures = 0;
    t.next_run_at = now;
    again.push_back(std::move(t));
  }
  if (again.empty()) return out;
  // One transaction for them all, with their events.
  Status st = WithEvents(again, now, [&](std::vector<Event>* events) {
    return store_->SaveTaskStates(again, events);
  });
  if (!st.ok()) {
    spdlog::error("tasks: rescheduling {} tasks: {}", again.size(), st.ToString());
    for (auto& [id, done] : out) done = false;
    return out;
  }
  for (Task& t : again) tasks_[t.task_id] = std::move(t);
  sched_cv_.notify_all();
  return out;
}

Status TaskScheduler::Enqueue(std::unique_lock<std::mutex>* lock, const std::string& id,
                              int64_t now) {
  auto it = tasks_.find(id);
  if (it == tasks_.end() || it->second.status != TaskStatus::kScheduled ||
      it->second.next_run_at > now) {
    return Status::Ok();
  }
  Task* task = &it->second;
  TaskRun run;
  run.job_id = NewRunId();
  run.task_seq = task->seq;
  run.task_id = task->task_id;
  run.job_number = last_number_[task->seq] + 1;
  run.queue = QueueFor(*task);
  run.created_at = now;
  run.args = ArgsForRun(*task);
  Task next = *task;
  next.status = TaskStatus::kEnqueued;
  next.age += 1;
  next.current_job = run.job_id;
  // Written without the lock: with thousands of tasks due at once (each a commit) the API and
  // the workers go on meanwhile. Only this thread changes a SCHEDULED task; one removed
  // meanwhile is not saved (NotFound), or has its new run cancelled by the removal.
  lock->unlock();
  Status st = Save(next, &run, nullptr);
  int64_t step = std::max<int64_t>(1, options_.runs_kept / 10);
  if (st.ok() && run.job_number > options_.runs_kept && run.job_number % step == 0) {
    auto pruned = store_->PruneTaskRuns(next.seq, run.job_number - options_.runs_kept + 1);
    if (!pruned.ok()) {
      spdlog::warn("tasks: deleting the old runs of {}: {}", id, pruned.status().ToString());
    }
  }
  lock->lock();
  it = tasks_.find(id);
  if (it == tasks_.end() || it->second.seq != next.seq) return Status::Ok();  // removed
  SLUICE_RETURN_IF_ERROR(st);
  task = &it->second;
  *task = std::move(next);
  last_number_[task->seq] = run.job_number;
  if (options_.dispatch) {
    undispatched_[run.job_id] = std::move(run);
    return Status::Ok();
  }
  queues_[{QueueRank(run.queue), run.queue}].push_back(run.job_id);
  runs_[run.job_id] = std::move(run);
  work_cv_.notify_one();
  return Status::Ok();
}

void TaskScheduler::FailRun(Task* task, TaskRun* run, const std::string& error, int64_t now) {
  SettleFailedRun(task, run, error, now, options_.retry_delay_s);
  Status st = Save(*task, run, nullptr);
  if (!st.ok() && st.code() != Code::kNotFound) {
    spdlog::error("tasks: recording the failure of {}: {}", task->task_id, st.ToString());
  }
}

void TaskScheduler::SucceedRun(Task* task, TaskRun* run, std::vector<TaskItem>* items, int64_t now,
                               const ItemTally& earlier) {
  Task next = *task;
  Store::SettleRun settle = SettleSucceededRun(&next, run, items, now, earlier);
  Status st = Save(next, run, items, settle);
  if (st.ok()) {
    *task = std::move(next);
    return;
  }
  if (st.code() == Code::kNotFound) return;  // removed meanwhile
  // Nothing of the run was kept: it counts as a failed run.
  FailRun(task, run, "storing its items: " + st.ToString(), now);
}

Status TaskScheduler::SaveBatch(const std::string& job_id, std::vector<TaskItem>* batch,
                                ItemTally* tally) {
  Task task;
  TaskRun run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = runs_.find(job_id);
    auto t = r == runs_.end() ? tasks_.end() : tasks_.find(r->second.task_id);
    if (r == runs_.end() || r->second.status != RunStatus::kStarted || t == tasks_.end() ||
        t->second.current_job != job_id) {
      return Status::Cancelled("the run was retried or its task removed meanwhile");
    }
    AddRunLog(&r->second, clock_->NowMicros(),
              "storing " + std::to_string(batch->size()) + " items (" +
                  std::to_string(tally->items) + " stored before)");
    task = t->second;
    run = r->second;
  }
  // Without the lock (a batch is a large commit); the task is matched by seq, so one removed
  // meanwhile is not written (NotFound).
  SLUICE_RETURN_IF_ERROR(store_->SaveTask(task, &run, batch));
  tally->Add(*batch);
  return Status::Ok();
}

bool TaskScheduler::PopRun(std::string* job_id) {
  for (auto& [key, q] : queues_) {
    if (!q.empty()) {
      *job_id = q.front();
      q.pop_front();
      return true;
    }
  }
  return false;
}

void TaskScheduler::SchedulerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    int64_t now = clock_->NowMicros();
    std::vector<std::string> due;
    for (auto& [id, t] : tasks_) {
      if (t.status == TaskStatus::kScheduled && t.next_run_at <= now) due.push_back(id);
    }
    for (const std::string& id : due) {
      if (stop_) return;
      Status st = Enqueue(&lock, id, now);
      auto it = tasks_.find(id);
      if (!st.ok() && it != tasks_.end()) {
        spdlog::error("tasks: queueing a run of {}: {}; trying again in 1 s", id, st.ToString());
        it->second.next_run_at = now + 1'000'000;
      }
    }
    std::vector<std::string> expired;
    for (auto& [id, r] : runs_) {
      if (r.status == RunStatus::kStarted && r.lease_until < now) expired.push_back(id);
    }
    for (const std::string& id : expired) {
      TaskRun run = std::move(runs_[id]);
      runs_.erase(id);
      auto t = tasks_.find(run.task_id);
      if (t == tasks_.end() || t->second.current_job != id) continue;
      FailRun(&t->second, &run, "its lease expired: the worker stopped renewing it", now);
    }
    if (options_.dispatch) {
      DispatchRuns(&lock);
      FollowRuns(&lock);
    }
    RetryExports(&lock);
    sched_cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

void TaskScheduler::DispatchRuns(std::unique_lock<std::mutex>* lock) {
  if (undispatched_.empty()) return;
  std::map<std::string, TaskRun> pending = undispatched_;
  lock->unlock();
  std::vector<std::string> done;
  for (const auto& [id, run] : pending) {
    Status st = options_.dispatch(run);
    if (st.ok()) {
      done.push_back(id);
    } else {
      spdlog::warn("tasks: registering run {} of {} as a cluster job: {}; trying again",
                   run.job_number, run.task_id, st.ToString());
    }
  }
  lock->lock();
  for (const std::string& id : done) undispatched_.erase(id);
}

void TaskScheduler::FollowRuns(std::unique_lock<std::mutex>* lock) {
  int64_t mono = clock_->MonotonicMicros();
  if (mono - followed_at_ < 1'000'000) return;
  followed_at_ = mono;
  struct Out {
    std::string task_id;
    int64_t seq;
    std::string run_id;
  };
  std::vector<Out> out;
  for (const auto& [id, t] : tasks_) {
    if ((t.status == TaskStatus::kEnqueued || t.status == TaskStatus::kRunning) &&
        !t.current_job.empty() && !undispatched_.count(t.current_job)) {
      out.push_back({id, t.seq, t.current_job});
    }
  }
  if (out.empty()) return;
  lock->unlock();
  // Every task in one read (a GrimoireLab instance has thousands); a run's job is looked at
  // every ten seconds at most (a job that ended without its run is rare: a dead letter).
  std::map<std::string, Task> all;
  if (auto listed = store_->ListTasks(); listed.ok()) {
    for (Task& t : *listed) all.emplace(t.task_id, std::move(t));
  }
  std::vector<Task> stored;                // as the store has them now
  std::vector<std::pair<Out, Job>> ended;  // runs whose job ended without settling them
  std::set<std::string> followed;
  for (const Out& o : out) {
    followed.insert(o.run_id);
    auto found = all.find(o.task_id);
    if (found == all.end() || found->second.seq != o.seq) continue;  // removed, store away
    Result<Task> t = found->second;
    bool settled = t->current_job != o.run_id ||
                   (t->status != TaskStatus::kEnqueued && t->status != TaskStatus::kRunning);
    int64_t& checked = job_checked_[o.run_id];
    if (!settled && mono - checked >= static_cast<int64_t>(options_.job_check_s * 1e6)) {
      checked = mono;
      auto job = store_->FindJobByIdempotencyKey(TaskJobKey(o.run_id));
      if (job.ok() && job->has_value() && IsFinal((*job)->state)) {
        // The worker writes the task before the job ends: read the task again to tell a run
        // it settled from one its job left behind.
        t = store_->GetTask(o.task_id);
        if (!t.ok() || t->seq != o.seq) continue;
        if (t->current_job == o.run_id) {
          ended.emplace_back(o, std::move(**job));
          continue;
        }
        settled = true;
      }
    }
    if (settled && (!options_.items_dir.empty() || options_.items_out != nullptr)) {
      ExportItems(o.task_id, o.seq);
    }
    stored.push_back(std::move(*t));
  }
  std::erase_if(job_checked_, [&](const auto& e) { return !followed.count(e.first); });
  lock->lock();
  for (Task& t : stored) {
    auto it = tasks_.find(t.task_id);
    // Only a task still as it was followed: the API may have removed it meanwhile.
    if (it == tasks_.end() || it->second.seq != t.seq) continue;
    if (t.current_job != it->second.current_job && !it->second.current_job.empty()) {
      spdlog::debug("tasks: {} is {} after its run on a cluster worker", t.task_id,
                    TaskStatusName(t.status));
    }
    it->second = std::move(t);
  }
  int64_t now = clock_->NowMicros();
  for (auto& [o, job] : ended) {
    auto it = tasks_.find(o.task_id);
    if (it == tasks_.end() || it->second.seq != o.seq || it->second.current_job != o.run_id) {
      continue;
    }
    auto run = store_->GetTaskRun(o.run_id);
    if (!run.ok()) continue;
    std::string why =
        "its job " + std::to_string(job.id) + " ended " + std::string(StateName(job.state)) +
        (job.error.code.empty() ? "" : " (" + job.error.code + ": " + job.error.message + ")");
    FailRun(&it->second, &*run, why, now);
  }
}

void TaskScheduler::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    std::string job_id;
    if (!PopRun(&job_id)) {
      work_cv_.wait(lock);
      continue;
    }
    lock.unlock();
    RunOne(job_id);
    lock.lock();
  }
}

void TaskScheduler::RunOne(const std::string& job_id) {
  FetchRequest req;
  const Backend* backend = nullptr;
  std::string task_id;
  int64_t task_seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = runs_.find(job_id);
    if (r == runs_.end()) return;
    auto t = tasks_.find(r->second.task_id);
    if (t == tasks_.end() || t->second.current_job != job_id) {
      runs_.erase(r);
      return;
    }
    int64_t now = clock_->NowMicros();
    TaskRun& run = r->second;
    Task& task = t->second;
    run.status = RunStatus::kStarted;
    run.started_at = now;
    run.lease_until = now + static_cast<int64_t>(options_.lease_s * 1e6);
    AddRunLog(&run, now, "started on queue " + run.queue + " with " + run.args);
    Task next = task;
    next.status = TaskStatus::kRunning;
    Status st = Save(next, &run, nullptr);
    if (!st.ok()) {
      FailRun(&task, &run, "recording its start: " + st.ToString(), now);
      runs_.erase(r);
      return;
    }
    task = std::move(next);
    backend = FindBackend(task.backend);
    if (backend == nullptr) {
      FailRun(&task, &run, "this daemon has no backend '" + task.backend + "'", now);
      runs_.erase(r);
      return;
    }
    req.task_id = task.task_id;
    req.category = task.category;
    req.args = run.args;
    req.from_archive = task.fetch_from_archive;
    task_id = task.task_id;
    task_seq = task.seq;
  }
  req.tick = [this, job_id] {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = runs_.find(job_id);
    if (r != runs_.end() && r->second.status == RunStatus::kStarted) {
      r->second.lease_until = clock_->NowMicros() + static_cast<int64_t>(options_.lease_s * 1e6);
    }
  };
  req.log = [this, job_id](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    auto r = runs_.find(job_id);
    if (r != runs_.end()) AddRunLog(&r->second, clock_->NowMicros(), line);
  };
  ItemTally stored;  // the batches stored while it ran
  req.save = [this, job_id, &stored](std::vector<TaskItem>* batch) {
    return SaveBatch(job_id, batch, &stored);
  };
  auto items = const_cast<Backend*>(backend)->Fetch(req);
  bool finished = Settle(job_id, task_id, &items, stored);
  // What was stored goes out: a finished run's items, and those of batches stored by a run
  // that then failed (or was taken over), as Arthur pushes items as they are fetched.
  if ((finished || stored.fetched > 0) &&
      (!options_.items_dir.empty() || options_.items_out != nullptr)) {
    ExportItems(task_id, task_seq);
  }
}

bool TaskScheduler::Settle(const std::string& job_id, const std::string& task_id,
                           Result<std::vector<TaskItem>>* items, const ItemTally& stored) {
  std::lock_guard<std::mutex> lock(mu_);
  auto r = runs_.find(job_id);
  if (r == runs_.end() || r->second.status != RunStatus::kStarted) {
    spdlog::warn("tasks: dropping the result of run {} of {}: it was retried or removed meanwhile",
                 job_id, task_id);
    return false;
  }
  TaskRun run = std::move(r->second);
  runs_.erase(r);
  auto t = tasks_.find(task_id);
  if (t == tasks_.end() || t->second.current_job != job_id) return false;
  int64_t now = clock_->NowMicros();
  bool finished = false;
  if (!items->ok()) {
    FailRun(&t->second, &run, items->status().message(), now);
  } else {
    SucceedRun(&t->second, &run, &**items, now, stored);
    finished = run.status == RunStatus::kFinished;
    spdlog::info("tasks: run {} of {} finished: {} items", run.job_number, task_id,
                 stored.items + static_cast<int64_t>((*items)->size()));
  }
  // Its next run due at once (delay 0): queued now, not at the scheduler's next look.
  if (t->second.status == TaskStatus::kScheduled && t->second.next_run_at <= now) {
    sched_cv_.notify_one();
  }
  return finished;
}

void TaskScheduler::ExportItems(const std::string& task_id, int64_t task_seq) {
  Status st;
  if (!options_.items_dir.empty()) st = ExportItemsFile(task_id, task_seq);
  if (st.ok() && options_.items_out != nullptr) st = ExportItemsOut(task_id, task_seq);
  std::lock_guard<std::mutex> lock(mu_);
  if (st.ok()) {
    export_retry_.erase({task_id, task_seq});
    return;
  }
  if (export_retry_.insert({task_id, task_seq}).second) {
    spdlog::error("tasks: exporting the items of {}: {}; trying again every second", task_id,
                  st.ToString());
  }
}

void TaskScheduler::RetryExports(std::unique_lock<std::mutex>* lock) {
  int64_t now = clock_->MonotonicMicros();
  if (export_retry_.empty() || now - export_retry_at_ < 1'000'000) return;
  export_retry_at_ = now;
  auto pending = export_retry_;
  lock->unlock();
  for (const auto& [id, seq] : pending) {
    Status st;
    if (!options_.items_dir.empty()) st = ExportItemsFile(id, seq);
    if (st.ok() && options_.items_out != nullptr) st = ExportItemsOut(id, seq);
    if (st.ok()) {
      spdlog::info("tasks: the items of {} are exported again", id);
      std::lock_guard<std::mutex> relock(mu_);
      export_retry_.erase({id, seq});
    }
  }
  lock->lock();
}

Status TaskScheduler::ExportItemsOut(const std::string& task_id, int64_t task_seq) {
  std::lock_guard<std::mutex> lock(export_mu_);
  while (true) {
    // The position comes from the output itself, every time: an append whose answer was
    // lost is found there, never pushed twice.
    auto last = options_.items_out->Position(task_id, task_seq);
    if (!last.ok()) return last.status();
    auto items = store_->ListItems(task_seq, *last, 1000);
    if (!items.ok()) return items.status();
    if (items->empty()) return Status::Ok();
    std::vector<std::string> data;
    data.reserve(items->size());
    for (const TaskItem& item : *items) data.push_back(item.data);
    SLUICE_RETURN_IF_ERROR(options_.items_out->Append(task_id, task_seq, data, items->back().seq));
  }
}

Status TaskScheduler::ExportItemsFile(const std::string& task_id, int64_t task_seq) {
  std::lock_guard<std::mutex> lock(export_mu_);
  std::string path = options_.items_dir + "/" + TaskFileName(task_id) + ".jsonl";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  struct stat st;
  fstat(fd, &st);
  int64_t last = 0, size = st.st_size;
  auto mark = store_->GetValue(kExportNs, task_id);
  if (!mark.ok()) {
    close(fd);
    return mark.status();
  }
  long long seq = 0, mark_last = 0, mark_size = 0;
  if (*mark && std::sscanf((*mark)->c_str(), "%lld %lld %lld", &seq, &mark_last, &mark_size) == 3 &&
      seq == task_seq) {
    last = mark_last;
    // Lines written after the last mark (a crash before it was stored) are written again.
    if (size > mark_size && ftruncate(fd, mark_size) == 0) size = mark_size;
  }
  Status result;
  bool wrote = false;
  while (result.ok()) {
    auto items = store_->ListItems(task_seq, last, 1000);
    if (!items.ok()) {
      result = items.status();
      break;
    }
    if (items->empty()) break;
    std::string lines;
    for (const TaskItem& item : *items) lines += item.data + "\n";
    if (pwrite(fd, lines.data(), lines.size(), size) != static_cast<ssize_t>(lines.size())) {
      result = Status::FromErrno(errno, "write " + path);
      break;
    }
    size += static_cast<int64_t>(lines.size());
    last = items->back().seq;
    wrote = true;
  }
  if (result.ok() && (wrote || !*mark || seq != task_seq)) {
    if (fsync(fd) != 0) result = Status::FromErrno(errno, "fsync " + path);
    if (result.ok()) {
      result = store_->PutValue(
          kExportNs, task_id,
          std::to_string(task_seq) + " " + std::to_string(last) + " " + std::to_string(size));
    }
  }
  close(fd);
  return result;
}

std::string TaskFileName(const std::string& id) {
  std::string out = PercentEncode(id, "-_.");
  if (!out.empty() && out[0] == '.') out.replace(0, 1, "%2E");
  // Longer than a file name may be (255 bytes; 100 slashes encode to 300): cut, never inside
  // an escape, and told apart from other cut ids by a digest of the whole id.
  constexpr size_t kKeep = 160;
  if (out.size() > 200) {
    size_t cut = kKeep;
    if (out[cut - 1] == '%') cut -= 1;
    if (out[cut - 2] == '%') cut -= 2;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(id.data()), id.size(), digest);
    char hex[33];
    for (int i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    out = out.substr(0, cut) + "~" + hex;
  }
  return out;
}

}  // namespace sluice
