// SqliteStore: recurring tasks, their runs and the items they fetch.
#include <algorithm>

#include "store/sqlite/sqlite_store.h"

namespace sluice {

using sqlite::Stmt;

namespace {

constexpr std::string_view kTaskColumns =
    "seq, task_id, backend, category, backend_args, archive, fetch_from_archive, delay_s,"
    " max_retries, max_age, queue, status, age, num_failures, created_on, next_run_at,"
    " next_from_date, next_offset, current_job, scheduler_given";

constexpr std::string_view kRunColumns =
    "job_id, task_seq, task_id, job_number, queue, status, created_at, started_at, ended_at,"
    " lease_until, args, result, error, log";

Task ReadTask(const Stmt& s) {
  Task t;
  t.seq = s.Int(0);
  t.task_id = s.Text(1);
  t.backend = s.Text(2);
  t.category = s.Text(3);
  t.backend_args = s.Text(4);
  t.archive = s.Text(5);
  t.fetch_from_archive = s.Int(6) != 0;
  t.schedule.delay_s = s.Int(7);
  t.schedule.max_retries = static_cast<int>(s.Int(8));
  t.schedule.max_age = static_cast<int>(s.Int(9));
  t.schedule.queue = s.Text(10);
  auto status = ParseTaskStatus(s.Text(11));
  t.status = status.ok() ? *status : TaskStatus::kFailed;
  t.age = static_cast<int>(s.Int(12));
  t.num_failures = static_cast<int>(s.Int(13));
  t.created_on = s.Int(14);
  t.next_run_at = s.Int(15);
  t.next_from_date = s.Text(16);
  if (!s.IsNull(17)) t.next_offset = s.Int(17);
  t.current_job = s.Text(18);
  t.schedule_given = s.Int(19) != 0;
  return t;
}

TaskRun ReadRun(const Stmt& s) {
  TaskRun r;
  r.job_id = s.Text(0);
  r.task_seq = s.Int(1);
  r.task_id = s.Text(2);
  r.job_number = static_cast<int>(s.Int(3));
  r.queue = s.Text(4);
  auto status = ParseRunStatus(s.Text(5));
  r.status = status.ok() ? *status : RunStatus::kFailed;
  r.created_at = s.Int(6);
  r.started_at = s.Int(7);
  r.ended_at = s.Int(8);
  r.lease_until = s.Int(9);
  r.args = s.Text(10);
  r.result = s.Text(11);
  r.error = s.Text(12);
  r.log = s.Text(13);
  return r;
}

// Binds the task's mutable columns from index `i` on: status … current_job (8 values).
Stmt& BindTaskState(Stmt& s, int i, const Task& t) {
  s.Bind(i, TaskStatusName(t.status))
      .Bind(i + 1, int64_t{t.age})
      .Bind(i + 2, int64_t{t.num_failures})
      .Bind(i + 3, t.created_on)
      .Bind(i + 4, t.next_run_at)
      .Bind(i + 5, t.next_from_date);
  if (t.next_offset) {
    s.Bind(i + 6, *t.next_offset);
  } else {
    s.BindNull(i + 6);
  }
  return s.Bind(i + 7, t.current_job);
}

}  // namespace

Status SqliteStore::AddTasks(std::vector<Task>* tasks, std::vector<Event>* events) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto exists = Stmt::Prepare(write_.get(), "SELECT 1 FROM tasks WHERE task_id=?");
  if (!exists.ok()) return exists.status();
  auto ins =
      Stmt::Prepare(write_.get(), "INSERT INTO tasks (" + std::string(kTaskColumns) +
                                      ") VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!ins.ok()) return ins.status();
  SLUICE_RETURN_IF_ERROR(write_.Exec("BEGIN IMMEDIATE"));
  Status st;
  for (Task& t : *tasks) {
    exists->Bind(1, t.task_id);
    auto row = exists->Step();
    exists->Reset();
    if (!row.ok()) {
      st = row.status();
      break;
    }
    if (*row) {
      st = Status::AlreadyExists("task '" + t.task_id + "' already exists");
      break;
    }
    ins->Bind(1, t.task_id)
        .Bind(2, t.backend)
        .Bind(3, t.category)
        .Bind(4, t.backend_args)
        .Bind(5, t.archive)
        .Bind(6, int64_t{t.fetch_from_archive})
        .Bind(7, t.schedule.delay_s)
        .Bind(8, int64_t{t.schedule.max_retries})
        .Bind(9, int64_t{t.schedule.max_age})
        .Bind(10, t.schedule.queue);
    BindTaskState(*ins, 11, t);
    ins->Bind(19, int64_t{t.schedule_given});
    st = ins->Run();
    if (!st.ok()) break;
    t.seq = sqlite3_last_insert_rowid(write_.get());
  }
  for (size_t i = 0; st.ok() && events != nullptr && i < events->size(); ++i) {
    st = InsertEvent(&(*events)[i]);
  }
  if (st.ok()) st = write_.Exec("COMMIT");
  if (!st.ok()) {
    (void)write_.Exec("ROLLBACK");
    for (Task& t : *tasks) t.seq = 0;
  }
  return st;
}

Result<std::vector<Task>> SqliteStore::QueryTasks(const std::string& where,
                                                  const std::vector<Value>& args) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s =
      Stmt::Prepare(read_.get(), "SELECT " + std::string(kTaskColumns) + " FROM tasks " + where);
  if (!s.ok()) return s.status();
  for (size_t i = 0; i < args.size(); ++i) s->Bind(static_cast<int>(i + 1), args[i]);
  std::vector<Task> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadTask(*s));
  }
  return out;
}

Result<std::vector<Task>> SqliteStore::ListTasks() { return QueryTasks("ORDER BY task_id", {}); }

Result<Task> SqliteStore::GetTask(const std::string& task_id) {
  auto found = QueryTasks("WHERE task_id=?", {Value(task_id)});
  if (!found.ok()) return found.status();
  if (found->empty()) return Status::NotFound("no task '" + task_id + "'");
  return std::move(found->front());
}

Result<std::vector<bool>> SqliteStore::RemoveTasks(const std::vector<std::string>& task_ids) {
  std::vector<bool> removed;
  Status st = InWriteTransaction([&]() -> Status {
    auto cancel =
        Stmt::Prepare(write_.get(),
                      "UPDATE task_runs SET status='canceled', error='the task was removed'"
                      " WHERE status IN ('queued','started') AND task_seq IN"
                      " (SELECT seq FROM tasks WHERE task_id=?)");
    auto del = Stmt::Prepare(write_.get(), "DELETE FROM tasks WHERE task_id=?");
    if (!cancel.ok()) return cancel.status();
    if (!del.ok()) return del.status();
    for (const std::string& id : task_ids) {
      SLUICE_RETURN_IF_ERROR(cancel->Bind(1, id).Run());
      SLUICE_RETURN_IF_ERROR(del->Bind(1, id).Run());
      removed.push_back(sqlite3_changes(write_.get()) != 0);
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return removed;
}

Status SqliteStore::SaveTask(const Task& task, TaskRun* run, std::vector<TaskItem>* items,
                             const SettleRun& settle, Event* event, const JobFence* fence) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(write_.Exec("BEGIN IMMEDIATE"));
  Status st;
  if (fence != nullptr) {
    auto q = Stmt::Prepare(write_.get(), "SELECT lease_epoch FROM jobs WHERE id = ?");
    st = q.status();
    if (st.ok()) {
      q->Bind(1, fence->job_id);
      auto row = q->Step();
      st = row.status();
      if (st.ok() && (!*row || q->Int(0) != fence->epoch)) st = Fenced(*fence);
    }
  }
  if (st.ok() && items != nullptr && !items->empty()) {
    auto ins = Stmt::Prepare(write_.get(),
                             "INSERT OR IGNORE INTO items (task_seq, task_id, uuid, updated_on,"
                             " data) VALUES (?,?,?,?,?)");
    st = ins.status();
    for (size_t i = 0; st.ok() && i < items->size(); ++i) {
      TaskItem& item = (*items)[i];
      st = ins->Bind(1, task.seq)
               .Bind(2, task.task_id)
               .Bind(3, item.uuid)
               .Bind(4, item.updated_on)
               .Bind(5, item.data)
               .Run();
      item.seq = sqlite3_changes(write_.get()) ? sqlite3_last_insert_rowid(write_.get()) : 0;
    }
  }
  if (st.ok() && settle && run != nullptr) settle(run);
  if (st.ok() && run != nullptr) {
    auto put = Stmt::Prepare(write_.get(), "INSERT OR REPLACE INTO task_runs (" +
                                               std::string(kRunColumns) +
                                               ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    st = put.status();
    if (st.ok()) {
      st = put->Bind(1, run->job_id)
               .Bind(2, run->task_seq)
               .Bind(3, run->task_id)
               .Bind(4, int64_t{run->job_number})
               .Bind(5, run->queue)
               .Bind(6, RunStatusName(run->status))
               .Bind(7, run->created_at)
               .Bind(8, run->started_at)
               .Bind(9, run->ended_at)
               .Bind(10, run->lease_until)
               .Bind(11, run->args)
               .Bind(12, run->result)
               .Bind(13, run->error)
               .Bind(14, run->log)
               .Run();
    }
  }
  if (st.ok()) st = UpdateTaskStateLocked(task);
  if (st.ok() && event != nullptr) st = InsertEvent(event);
  if (st.ok()) st = write_.Exec("COMMIT");
  if (!st.ok()) {
    (void)write_.Exec("ROLLBACK");
    if (items != nullptr) {
      for (TaskItem& item : *items) item.seq = 0;
    }
  }
  return st;
}

Status SqliteStore::UpdateTaskStateLocked(const Task& task) {
  auto upd = Stmt::Prepare(write_.get(),
                           "UPDATE tasks SET status=?, age=?, num_failures=?, created_on=?,"
                           " next_run_at=?, next_from_date=?, next_offset=?, current_job=?"
                           " WHERE seq=?");
  if (!upd.ok()) return upd.status();
  BindTaskState(*upd, 1, task).Bind(9, task.seq);
  SLUICE_RETURN_IF_ERROR(upd->Run());
  if (sqlite3_changes(write_.get()) == 0) {
    return Status::NotFound("task '" + task.task_id + "' was removed");
  }
  return Status::Ok();
}

Status SqliteStore::SaveTaskStates(const std::vector<Task>& tasks, std::vector<Event>* events) {
  return InWriteTransaction([&]() -> Status {
    for (const Task& t : tasks) SLUICE_RETURN_IF_ERROR(UpdateTaskStateLocked(t));
    for (size_t i = 0; events != nullptr && i < events->size(); ++i) {
      SLUICE_RETURN_IF_ERROR(InsertEvent(&(*events)[i]));
    }
    return Status::Ok();
  });
}

Result<std::vector<TaskRun>> SqliteStore::QueryRuns(const std::string& where,
                                                    const std::vector<Value>& args) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s =
      Stmt::Prepare(read_.get(), "SELECT " + std::string(kRunColumns) + " FROM task_runs " + where);
  if (!s.ok()) return s.status();
  for (size_t i = 0; i < args.size(); ++i) s->Bind(static_cast<int>(i + 1), args[i]);
  std::vector<TaskRun> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadRun(*s));
  }
  return out;
}

Result<TaskRun> SqliteStore::GetTaskRun(const std::string& job_id) {
  auto found = QueryRuns("WHERE job_id=?", {Value(job_id)});
  if (!found.ok()) return found.status();
  if (found->empty()) return Status::NotFound("no job '" + job_id + "'");
  return std::move(found->front());
}

Result<std::vector<TaskRun>> SqliteStore::ListTaskRuns(int64_t task_seq) {
  return QueryRuns("WHERE task_seq=? ORDER BY job_number", {Value(task_seq)});
}

Result<std::vector<TaskRun>> SqliteStore::ListTaskRunIds(int64_t task_seq, int newest) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(),
                         "SELECT job_id, job_number FROM task_runs WHERE task_seq=?"
                         " ORDER BY job_number DESC LIMIT ?");
  if (!s.ok()) return s.status();
  s->Bind(1, task_seq).Bind(2, int64_t{newest});
  std::vector<TaskRun> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    TaskRun& r = out.emplace_back();
    r.job_id = s->Text(0);
    r.job_number = static_cast<int>(s->Int(1));
    r.task_seq = task_seq;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<int64_t> SqliteStore::PruneTaskRuns(int64_t task_seq, int64_t below_number) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto del = Stmt::Prepare(write_.get(),
                           "DELETE FROM task_runs WHERE task_seq=? AND job_number<?"
                           " AND status IN ('finished','failed','canceled')");
  if (!del.ok()) return del.status();
  SLUICE_RETURN_IF_ERROR(del->Bind(1, task_seq).Bind(2, below_number).Run());
  return static_cast<int64_t>(sqlite3_changes(write_.get()));
}

Result<std::vector<TaskItem>> SqliteStore::ListItems(int64_t task_seq, int64_t after_seq,
                                                     int limit) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(),
                         "SELECT seq, uuid, updated_on, data FROM items WHERE task_seq=? AND seq>?"
                         " ORDER BY seq LIMIT ?");
  if (!s.ok()) return s.status();
  s->Bind(1, task_seq).Bind(2, after_seq).Bind(3, int64_t{limit});
  std::vector<TaskItem> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    TaskItem item;
    item.seq = s->Int(0);
    item.uuid = s->Text(1);
    item.updated_on = s->Int(2);
    item.data = s->Text(3);
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace sluice
