// PgStore: recurring tasks, their runs and the items they fetch.
#include <map>
#include <set>

#include "store/postgres/pg_store.h"

namespace sluice {

using pg::Param;

namespace {

constexpr std::string_view kTaskColumns =
    "seq, task_id, backend, category, backend_args, archive, fetch_from_archive, delay_s,"
    " max_retries, max_age, queue, status, age, num_failures, created_on, next_run_at,"
    " next_from_date, next_offset, current_job, scheduler_given";

constexpr std::string_view kRunColumns =
    "job_id, task_seq, task_id, job_number, queue, status, created_at, started_at, ended_at,"
    " lease_until, args, result, error, log";

Task ReadTask(const pg::Rows& r, int i) {
  Task t;
  t.seq = r.Int(i, 0);
  t.task_id = r.Text(i, 1);
  t.backend = r.Text(i, 2);
  t.category = r.Text(i, 3);
  t.backend_args = r.Text(i, 4);
  t.archive = r.Text(i, 5);
  t.fetch_from_archive = r.Int(i, 6) != 0;
  t.schedule.delay_s = r.Int(i, 7);
  t.schedule.max_retries = static_cast<int>(r.Int(i, 8));
  t.schedule.max_age = static_cast<int>(r.Int(i, 9));
  t.schedule.queue = r.Text(i, 10);
  auto status = ParseTaskStatus(r.Text(i, 11));
  t.status = status.ok() ? *status : TaskStatus::kFailed;
  t.age = static_cast<int>(r.Int(i, 12));
  t.num_failures = static_cast<int>(r.Int(i, 13));
  t.created_on = r.Int(i, 14);
  t.next_run_at = r.Int(i, 15);
  t.next_from_date = r.Text(i, 16);
  if (!r.IsNull(i, 17)) t.next_offset = r.Int(i, 17);
  t.current_job = r.Text(i, 18);
  t.schedule_given = r.Int(i, 19) != 0;
  return t;
}

TaskRun ReadRun(const pg::Rows& r, int i) {
  TaskRun run;
  run.job_id = r.Text(i, 0);
  run.task_seq = r.Int(i, 1);
  run.task_id = r.Text(i, 2);
  run.job_number = static_cast<int>(r.Int(i, 3));
  run.queue = r.Text(i, 4);
  auto status = ParseRunStatus(r.Text(i, 5));
  run.status = status.ok() ? *status : RunStatus::kFailed;
  run.created_at = r.Int(i, 6);
  run.started_at = r.Int(i, 7);
  run.ended_at = r.Int(i, 8);
  run.lease_until = r.Int(i, 9);
  run.args = r.Text(i, 10);
  run.result = r.Text(i, 11);
  run.error = r.Text(i, 12);
  run.log = r.Text(i, 13);
  return run;
}

// The task's mutable columns, status … current_job (8 values).
void TaskState(const Task& t, std::vector<Param>* p) {
  p->emplace_back(std::string(TaskStatusName(t.status)));
  p->emplace_back(int64_t{t.age});
  p->emplace_back(int64_t{t.num_failures});
  p->emplace_back(t.created_on);
  p->emplace_back(t.next_run_at);
  p->emplace_back(t.next_from_date);
  p->push_back(t.next_offset ? Param(*t.next_offset) : Param());
  p->emplace_back(t.current_job);
}

}  // namespace

Status PgStore::AppendEventsLocked(Event* events, size_t n) {
  if (n == 0) return Status::Ok();
  auto first = write_.Exec("UPDATE " + T("counters") +
                               " SET value = value + $1 WHERE name = 'events'"
                               " RETURNING value - $1 + 1",
                           {Param(static_cast<int64_t>(n))});
  if (!first.ok()) return first.status();
  std::vector<std::vector<Param>> cols(7);
  for (size_t i = 0; i < n; ++i) {
    Event& e = events[i];
    e.id = first->Int(0, 0) + static_cast<int64_t>(i);
    cols[0].emplace_back(e.id);
    cols[1].emplace_back(e.ts);
    cols[2].emplace_back(e.job_id);
    cols[3].emplace_back(e.queue);
    cols[4].emplace_back(e.kind);
    cols[5].emplace_back(e.type);
    cols[6].emplace_back(e.data);
  }
  std::vector<Param> arrays;
  for (const auto& c : cols) arrays.emplace_back(pg::ArrayLiteral(c));
  auto ins = write_.Exec("INSERT INTO " + T("events") +
                             " (id, ts, job_id, queue, kind, type, data) SELECT * FROM"
                             " unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],"
                             " $5::text[], $6::text[], $7::text[])",
                         arrays);
  if (!ins.ok()) return ins.status();
  return write_.Exec("SELECT pg_notify($1, '')", {Param("sluice_events:" + options_.pg_schema)})
      .status();
}

Status PgStore::AddTasks(std::vector<Task>* tasks, std::vector<Event>* events) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(Ensure(&write_));
  // The whole batch in one statement, a column of values each: a task whose id is taken
  // already (stored, or twice in the batch) is not inserted, and refuses the batch.
  std::vector<std::vector<Param>> cols(19);
  for (const Task& t : *tasks) {
    std::vector<Param> p = {Param(t.task_id),
                            Param(t.backend),
                            Param(t.category),
                            Param(t.backend_args),
                            Param(t.archive),
                            Param(int64_t{t.fetch_from_archive}),
                            Param(t.schedule.delay_s),
                            Param(int64_t{t.schedule.max_retries}),
                            Param(int64_t{t.schedule.max_age}),
                            Param(t.schedule.queue)};
    TaskState(t, &p);
    p.emplace_back(int64_t{t.schedule_given});
    for (size_t c = 0; c < cols.size(); ++c) cols[c].push_back(std::move(p[c]));
  }
  std::vector<Param> arrays;
  for (const auto& c : cols) arrays.emplace_back(pg::ArrayLiteral(c));
  Status st = write_.Script("BEGIN");
  if (st.ok() && !tasks->empty()) {
    auto r = write_.Exec(
        "INSERT INTO " + T("tasks") +
            " (task_id, backend, category, backend_args, archive, fetch_from_archive, delay_s,"
            " max_retries, max_age, queue, status, age, num_failures, created_on, next_run_at,"
            " next_from_date, next_offset, current_job, scheduler_given) SELECT * FROM"
            " unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[],"
            " $7::bigint[], $8::integer[], $9::integer[], $10::text[], $11::text[],"
            " $12::integer[], $13::integer[], $14::bigint[], $15::bigint[], $16::text[],"
            " $17::bigint[], $18::text[], $19::integer[])"
            " ON CONFLICT (task_id) DO NOTHING RETURNING seq, task_id",
        arrays);
    st = r.status();
    std::map<std::string, int64_t> seqs;
    for (int i = 0; st.ok() && i < r->size(); ++i) seqs[r->Text(i, 1)] = r->Int(i, 0);
    for (size_t i = 0; st.ok() && i < tasks->size(); ++i) {
      Task& t = (*tasks)[i];
      auto it = seqs.find(t.task_id);
      if (it == seqs.end()) {
        st = Status::AlreadyExists("task '" + t.task_id + "' already exists");
      } else {
        t.seq = it->second;
        seqs.erase(it);  // the same id again in the batch is not this row
      }
    }
  }
  if (st.ok() && events != nullptr) st = AppendEventsLocked(events->data(), events->size());
  if (st.ok()) st = write_.Script("COMMIT");
  if (!st.ok()) {
    (void)write_.Script("ROLLBACK");
    for (Task& t : *tasks) t.seq = 0;
    return Note(st, &write_);
  }
  return st;
}

Result<std::vector<Task>> PgStore::QueryTasks(const std::string& tail,
                                              const std::vector<Param>& params) {
  auto r = Read("SELECT " + std::string(kTaskColumns) + " FROM " + T("tasks") + " " + tail, params);
  if (!r.ok()) return r.status();
  std::vector<Task> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(ReadTask(*r, i));
  return out;
}

Result<std::vector<Task>> PgStore::ListTasks() {
  return QueryTasks("ORDER BY task_id COLLATE \"C\"", {});
}

Result<Task> PgStore::GetTask(const std::string& task_id) {
  auto found = QueryTasks("WHERE task_id = $1", {Param(task_id)});
  if (!found.ok()) return found.status();
  if (found->empty()) return Status::NotFound("no task '" + task_id + "'");
  return std::move(found->front());
}

Result<std::vector<bool>> PgStore::RemoveTasks(const std::vector<std::string>& task_ids) {
  std::lock_guard<std::mutex> lock(write_mu_);
  std::vector<Param> list;
  for (const std::string& id : task_ids) list.emplace_back(id);
  // One statement for the whole batch: the tasks' waiting runs cancelled, the tasks deleted.
  auto deleted = WriteExec("WITH cancelled AS (UPDATE " + T("task_runs") +
                               " SET status = 'canceled', error = 'the task was removed'"
                               " WHERE status IN ('queued', 'started') AND task_seq IN"
                               " (SELECT seq FROM " +
                               T("tasks") +
                               " WHERE task_id = ANY($1::text[])))"
                               " DELETE FROM " +
                               T("tasks") + " WHERE task_id = ANY($1::text[]) RETURNING task_id",
                           {pg::ArrayLiteral(list)});
  if (!deleted.ok()) return deleted.status();
  std::set<std::string> gone;
  for (int i = 0; i < deleted->size(); ++i) gone.insert(deleted->Text(i, 0));
  // Each id says whether it was there; the same id twice is removed once.
  std::vector<bool> removed;
  for (const std::string& id : task_ids) removed.push_back(gone.erase(id) != 0);
  return removed;
}

Status PgStore::SaveTask(const Task& task, TaskRun* run, std::vector<TaskItem>* items,
                         const SettleRun& settle, Event* event, const JobFence* fence) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(Ensure(&write_));
  Status st = write_.Script("BEGIN");
  if (st.ok() && fence != nullptr) {
    // The row lock keeps a claim from raising the epoch until this commits.
    auto held = write_.Exec("SELECT lease_epoch FROM " + T("jobs") + " WHERE id = $1 FOR UPDATE",
                            {Param(fence->job_id)});
    st = held.status();
    if (st.ok() && (held->size() == 0 || held->Int(0, 0) != fence->epoch)) st = Fenced(*fence);
  }
  if (st.ok() && items != nullptr && !items->empty()) {
    std::vector<Param> uuids, updated, data;
    for (const TaskItem& item : *items) {
      uuids.emplace_back(item.uuid);
      updated.emplace_back(item.updated_on);
      data.emplace_back(item.data);
    }
    auto r = write_.Exec("INSERT INTO " + T("items") +
                             " (task_seq, task_id, uuid, updated_on, data)"
                             " SELECT $1, $2, u.uuid, u.updated_on, u.data FROM unnest($3::text[],"
                             " $4::bigint[], $5::text[]) WITH ORDINALITY AS u(uuid, updated_on,"
                             " data, ord) ORDER BY u.ord"
                             " ON CONFLICT (task_seq, uuid) DO NOTHING RETURNING uuid, seq",
                         {Param(task.seq), Param(task.task_id), pg::ArrayLiteral(uuids),
                          pg::ArrayLiteral(updated), pg::ArrayLiteral(data)});
    st = r.status();
    if (st.ok()) {
      std::map<std::string, int64_t> fresh;
      for (int i = 0; i < r->size(); ++i) fresh[r->Text(i, 0)] = r->Int(i, 1);
      for (TaskItem& item : *items) {
        auto it = fresh.find(item.uuid);
        item.seq = it != fresh.end() ? it->second : 0;
        if (it != fresh.end()) fresh.erase(it);  // the same uuid twice: the first is the new one
      }
    }
  }
  if (st.ok() && settle && run != nullptr) settle(run);
  if (st.ok() && run != nullptr) {
    st = write_
             .Exec("INSERT INTO " + T("task_runs") + " (" + std::string(kRunColumns) +
                       ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                       " ON CONFLICT (job_id) DO UPDATE SET task_seq = EXCLUDED.task_seq,"
                       " task_id = EXCLUDED.task_id, job_number = EXCLUDED.job_number,"
                       " queue = EXCLUDED.queue, status = EXCLUDED.status,"
                       " created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,"
                       " ended_at = EXCLUDED.ended_at, lease_until = EXCLUDED.lease_until,"
                       " args = EXCLUDED.args, result = EXCLUDED.result, error = EXCLUDED.error,"
                       " log = EXCLUDED.log",
                   {Param(run->job_id), Param(run->task_seq), Param(run->task_id),
                    Param(int64_t{run->job_number}), Param(run->queue),
                    Param(std::string(RunStatusName(run->status))), Param(run->created_at),
                    Param(run->started_at), Param(run->ended_at), Param(run->lease_until),
                    Param(run->args), Param(run->result), Param(run->error), Param(run->log)})
             .status();
  }
  if (st.ok()) st = UpdateTaskStateLocked(task);
  if (st.ok() && event != nullptr) st = AppendEventsLocked(event, 1);
  if (st.ok()) st = write_.Script("COMMIT");
  if (!st.ok()) {
    (void)write_.Script("ROLLBACK");
    if (items != nullptr) {
      for (TaskItem& item : *items) item.seq = 0;
    }
    return Note(st, &write_);
  }
  return st;
}

Status PgStore::UpdateTaskStateLocked(const Task& task) {
  std::vector<Param> p;
  TaskState(task, &p);
  p.emplace_back(task.seq);
  auto upd = write_.Exec("UPDATE " + T("tasks") +
                             " SET status = $1, age = $2, num_failures = $3, created_on = $4,"
                             " next_run_at = $5, next_from_date = $6, next_offset = $7,"
                             " current_job = $8 WHERE seq = $9",
                         p);
  if (!upd.ok()) return upd.status();
  if (upd->Affected() == 0) return Status::NotFound("task '" + task.task_id + "' was removed");
  return Status::Ok();
}

Status PgStore::SaveTaskStates(const std::vector<Task>& tasks, std::vector<Event>* events) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(Ensure(&write_));
  Status st = write_.Script("BEGIN");
  for (size_t i = 0; st.ok() && i < tasks.size(); ++i) st = UpdateTaskStateLocked(tasks[i]);
  if (st.ok() && events != nullptr) st = AppendEventsLocked(events->data(), events->size());
  if (st.ok()) st = write_.Script("COMMIT");
  if (!st.ok()) {
    (void)write_.Script("ROLLBACK");
    return Note(st, &write_);
  }
  return st;
}

Result<std::vector<TaskRun>> PgStore::QueryRuns(const std::string& tail,
                                                const std::vector<Param>& params) {
  auto r =
      Read("SELECT " + std::string(kRunColumns) + " FROM " + T("task_runs") + " " + tail, params);
  if (!r.ok()) return r.status();
  std::vector<TaskRun> out;
  for (int i = 0; i < r->size(); ++i) out.push_back(ReadRun(*r, i));
  return out;
}

Result<TaskRun> PgStore::GetTaskRun(const std::string& job_id) {
  auto found = QueryRuns("WHERE job_id = $1", {Param(job_id)});
  if (!found.ok()) return found.status();
  if (found->empty()) return Status::NotFound("no job '" + job_id + "'");
  return std::move(found->front());
}

Result<std::vector<TaskRun>> PgStore::ListTaskRuns(int64_t task_seq) {
  return QueryRuns("WHERE task_seq = $1 ORDER BY job_number", {Param(task_seq)});
}

Result<std::vector<TaskRun>> PgStore::ListTaskRunIds(int64_t task_seq, int newest) {
  auto r = Read("SELECT job_id, job_number FROM " + T("task_runs") +
                    " WHERE task_seq = $1 ORDER BY job_number DESC LIMIT $2",
                {Param(task_seq), Param(int64_t{newest})});
  if (!r.ok()) return r.status();
  std::vector<TaskRun> out;
  for (int i = r->size() - 1; i >= 0; --i) {
    TaskRun& run = out.emplace_back();
    run.job_id = r->Text(i, 0);
    run.job_number = static_cast<int>(r->Int(i, 1));
    run.task_seq = task_seq;
  }
  return out;
}

Result<int64_t> PgStore::PruneTaskRuns(int64_t task_seq, int64_t below_number) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(Ensure(&write_));
  auto del = write_.Exec("DELETE FROM " + T("task_runs") +
                             " WHERE task_seq = $1 AND job_number < $2"
                             " AND status IN ('finished', 'failed', 'canceled')",
                         {Param(task_seq), Param(below_number)});
  if (!del.ok()) return Note(del.status(), &write_);
  return static_cast<int64_t>(del->Affected());
}

Result<std::vector<TaskItem>> PgStore::ListItems(int64_t task_seq, int64_t after_seq, int limit) {
  auto r = Read("SELECT seq, uuid, updated_on, data FROM " + T("items") +
                    " WHERE task_seq = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                {Param(task_seq), Param(after_seq), Param(int64_t{limit})});
  if (!r.ok()) return r.status();
  std::vector<TaskItem> out;
  for (int i = 0; i < r->size(); ++i) {
    TaskItem item;
    item.seq = r->Int(i, 0);
    item.uuid = r->Text(i, 1);
    item.updated_on = r->Int(i, 2);
    item.data = r->Text(i, 3);
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace sluice
