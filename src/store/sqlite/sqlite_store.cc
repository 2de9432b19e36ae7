// SqliteStore: jobs, the kv map and handler object tables in one SQLite database.
#include "store/sqlite/sqlite_store.h"

#include <set>

#include "core/spdlog.h"
#include "store/sqlite/sqlite_schema.h"

namespace sluice {

using sqlite::Db;
using sqlite::Stmt;

namespace {

constexpr std::string_view kJobColumns =
    "id, queue, kind, spool, name, file_dev, file_ino, file_size, file_mtime_ns, state, "
    "priority, attempts, max_attempts, run_at, created_at, last_tried, finished_at, "
    "error_code, error_message, error_detail, result, interruptions, idempotency_key, "
    "lease_epoch, lease_owner, lease_until, retried_at";

Job ReadJob(const Stmt& s) {
  Job j;
  j.id = s.Int(0);
  j.queue = s.Text(1);
  j.kind = s.Text(2);
  j.spool = s.Text(3);
  j.name = s.Text(4);
  j.file.dev = static_cast<uint64_t>(s.Int(5));
  j.file.ino = static_cast<uint64_t>(s.Int(6));
  j.file.size = static_cast<uint64_t>(s.Int(7));
  j.file.mtime_ns = s.Int(8);
  auto state = ParseState(s.Text(9));
  j.state = state.ok() ? *state : JobState::kFailed;
  j.priority = static_cast<int>(s.Int(10));
  j.attempts = static_cast<int>(s.Int(11));
  j.max_attempts = static_cast<int>(s.Int(12));
  j.run_at = s.Int(13);
  j.created_at = s.Int(14);
  j.last_tried = s.Int(15);
  j.finished_at = s.Int(16);
  j.error.code = s.Text(17);
  j.error.message = s.Text(18);
  j.error.detail = s.Text(19);
  j.result = s.Text(20);
  j.interruptions = static_cast<int>(s.Int(21));
  j.idempotency_key = s.Text(22);
  j.lease_epoch = s.Int(23);
  j.lease_owner = s.Text(24);
  j.lease_until = s.Int(25);
  j.retried_at = s.Int(26);
  return j;
}

const char* SqlType(ColumnType t) {
  switch (t) {
    case ColumnType::kInteger:
      return "INTEGER";
    case ColumnType::kReal:
      return "REAL";
    case ColumnType::kText:
      return "TEXT";
  }
  return "TEXT";
}

std::string Quote(const std::string& ident) { return "\"" + ident + "\""; }

// INSERT … ON CONFLICT(key) DO UPDATE with each column's merge rule.
std::string UpsertSql(const TableSpec& t) {
  std::string cols, params, sets, key;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const ColumnSpec& c = t.columns[i];
    std::string q = Quote(c.name);
    cols += (i ? ", " : "") + q;
    params += (i ? ", ?" : "?");
    if (c.merge == MergeRule::kKey) {
      key = q;
      continue;
    }
    std::string cur = Quote(t.name) + "." + q, nu = "excluded." + q;
    if (!sets.empty()) sets += ", ";
    if (c.merge == MergeRule::kFirstNonNull) {
      sets += q + " = COALESCE(" + cur + ", " + nu + ")";
    } else {
      sets += q + " = CASE WHEN " + nu + " IS NULL THEN " + cur + " WHEN " + cur + " IS NULL OR " +
              nu + " > " + cur + " THEN " + nu + " ELSE " + cur + " END";
    }
  }
  std::string sql = "INSERT INTO " + Quote(t.name) + " (" + cols + ") VALUES (" + params +
                    ") ON CONFLICT(" + key + ") DO ";
  sql += sets.empty() ? "NOTHING" : "UPDATE SET " + sets;
  return sql;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  std::unique_ptr<SqliteStore> store(new SqliteStore());
  Status st = store->Init(path);
  if (!st.ok()) return st;
  return store;
}

Status SqliteStore::Init(const std::string& path) {
  auto w = Db::Open(path);
  if (!w.ok()) return w.status();
  write_ = std::move(*w);
  // WAL: readers never block the writer. synchronous=FULL: each COMMIT is fsynced before it
  // returns, so an acknowledged commit survives power loss (NORMAL would not, in WAL mode).
  // 16 KiB pages: KCIDB rows carry log excerpts of up to 16 KiB, which would otherwise spill
  // into chains of 4 KiB overflow pages. Only takes effect when the file is created.
  SLUICE_RETURN_IF_ERROR(write_.Exec("PRAGMA page_size=16384"));
  SLUICE_RETURN_IF_ERROR(write_.Exec("PRAGMA journal_mode=WAL"));
  SLUICE_RETURN_IF_ERROR(write_.Exec("PRAGMA synchronous=FULL"));
  SLUICE_RETURN_IF_ERROR(sqlite::Migrate(write_, sqlite::StoreMigrations(), path, &schema_));
  for (const std::string& m : schema_.applied) spdlog::info("database {}: applied {}", path, m);
  auto ckpt = sqlite::Checkpointer::Start(path, write_.get());
  if (!ckpt.ok()) return ckpt.status();
  checkpointer_ = std::move(*ckpt);
  // OR ROLLBACK: a failed statement ends the whole write (Write rolls back on any error), so
  // SQLite keeps no statement journal for these, which the counting triggers would otherwise
  // need: every page each statement touches copied aside first (schema version 5).
  auto ins = Stmt::Prepare(
      write_.get(),
      "INSERT OR ROLLBACK INTO jobs (queue, kind, spool, name, file_dev, file_ino, file_size,"
      " file_mtime_ns, state, priority, attempts, max_attempts, run_at, created_at, id, payload,"
      " idempotency_key, lease_owner) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!ins.ok()) return ins.status();
  insert_job_ = std::move(*ins);
  auto upd = Stmt::Prepare(
      write_.get(),
      "UPDATE OR ROLLBACK jobs SET state=?, attempts=?, run_at=?, last_tried=?, finished_at=?,"
      " error_code=?, error_message=?, error_detail=?, result=?, interruptions=?, priority=?"
      " WHERE id=?");
  if (!upd.ok()) return upd.status();
  update_job_ = std::move(*upd);
  auto epoch = Stmt::Prepare(write_.get(), "SELECT lease_epoch FROM jobs WHERE id=?");
  if (!epoch.ok()) return epoch.status();
  epoch_of_ = std::move(*epoch);
  auto ev = Stmt::Prepare(write_.get(),
                          "INSERT INTO events (ts, job_id, queue, kind, type, data)"
                          " VALUES (?,?,?,?,?,?)");
  if (!ev.ok()) return ev.status();
  insert_event_ = std::move(*ev);

  auto r = Db::Open(path);
  if (!r.ok()) return r.status();
  read_ = std::move(*r);
  auto latest = Stmt::Prepare(read_.get(), "SELECT " + std::string(kJobColumns) +
                                               " FROM jobs WHERE spool=? AND name=?"
                                               " ORDER BY id DESC LIMIT 1");
  if (!latest.ok()) return latest.status();
  latest_for_file_ = std::move(*latest);
  return Status::Ok();
}

Status SqliteStore::DefineTables(const std::vector<TableSpec>& tables) {
  // A handler without tables (exec, publish) changes nothing: no transaction either.
  if (tables.empty()) return Status::Ok();
  // One transaction: on a new database its tables cost one commit (one fsync), not one each.
  return InWriteTransaction([&] { return DefineTablesLocked(tables); });
}

Status SqliteStore::DefineTablesLocked(const std::vector<TableSpec>& tables) {
  // Several spools share one store: handlers with tables must declare the same ones
  // (ObjectRow::table indexes the list).
  if (!tables_.empty()) {
    bool same = tables.size() == tables_.size();
    for (size_t i = 0; same && i < tables.size(); ++i) same = tables[i].name == tables_[i].name;
    if (!same) {
      return Status::InvalidArgument(
          "spools whose handlers store different object tables cannot share a database");
    }
  }
  upserts_.clear();
  for (const TableSpec& t : tables) {
    std::string ddl = "CREATE TABLE IF NOT EXISTS " + Quote(t.name) + " (";
    for (size_t i = 0; i < t.columns.size(); ++i) {
      const ColumnSpec& c = t.columns[i];
      ddl += (i ? ", " : "") + Quote(c.name) + " " + SqlType(c.type);
      if (c.merge == MergeRule::kKey) ddl += " PRIMARY KEY NOT NULL";
    }
    ddl += ")";
    SLUICE_RETURN_IF_ERROR(write_.Exec(ddl));
    // Add columns a newer schema brought.
    auto info = Stmt::Prepare(write_.get(), "PRAGMA table_info(" + Quote(t.name) + ")");
    if (!info.ok()) return info.status();
    std::set<std::string> have;
    while (true) {
      auto row = info->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      have.insert(info->Text(1));
    }
    for (const ColumnSpec& c : t.columns) {
      if (have.count(c.name)) continue;
      SLUICE_RETURN_IF_ERROR(write_.Exec("ALTER TABLE " + Quote(t.name) + " ADD COLUMN " +
                                         Quote(c.name) + " " + SqlType(c.type)));
    }
    auto up = Stmt::Prepare(write_.get(), UpsertSql(t));
    if (!up.ok()) return up.status();
    upserts_.push_back(std::move(*up));
  }
  tables_ = tables;
  return Status::Ok();
}

Status SqliteStore::WriteLocked(WriteBatch* batch) {
  for (const auto& [name, epoch] : batch->holds) {
    auto held =
        Stmt::Prepare(write_.get(), "SELECT 1 FROM leases WHERE name=? AND owner=? AND epoch=?");
    if (!held.ok()) return held.status();
    held->Bind(1, name).Bind(2, batch->holder).Bind(3, epoch);
    auto row = held->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Cancelled("lease taken over: " + name);
  }
  for (Job& j : batch->new_jobs) {
    insert_job_.Bind(1, j.queue).Bind(2, j.kind).Bind(3, j.spool).Bind(4, j.name);
    insert_job_.Bind(5, static_cast<int64_t>(j.file.dev))
        .Bind(6, static_cast<int64_t>(j.file.ino))
        .Bind(7, static_cast<int64_t>(j.file.size))
        .Bind(8, j.file.mtime_ns);
    insert_job_.Bind(9, StateName(j.state))
        .Bind(10, static_cast<int64_t>(j.priority))
        .Bind(11, static_cast<int64_t>(j.attempts))
        .Bind(12, static_cast<int64_t>(j.max_attempts))
        .Bind(13, j.run_at)
        .Bind(14, j.created_at);
    if (j.id != 0) {
      insert_job_.Bind(15, j.id);
    } else {
      insert_job_.BindNull(15);
    }
    if (j.payload.empty()) {
      insert_job_.BindNull(16);
    } else {
      insert_job_.Bind(16, std::string_view(j.payload));
    }
    if (j.idempotency_key.empty()) {
      insert_job_.BindNull(17);
    } else {
      insert_job_.Bind(17, std::string_view(j.idempotency_key));
    }
    if (j.lease_owner.empty()) {
      insert_job_.BindNull(18);
    } else {
      insert_job_.Bind(18, std::string_view(j.lease_owner));
    }
    Status st = insert_job_.Run();
    if (!st.ok()) return st.Annotate("add job " + j.name);
    j.id = sqlite3_last_insert_rowid(write_.get());
    batch->appended.push_back(StateEvent(j, j.created_at));
    SLUICE_RETURN_IF_ERROR(InsertEvent(&batch->appended.back()));
  }
  for (const JobUpdate& u : batch->updates) {
    if (u.epoch > 0) {
      // Fenced: the write lock is held, so the epoch read here is the one the update meets.
      epoch_of_.Bind(1, u.job_id);
      auto row = epoch_of_.Step();
      int64_t epoch = row.ok() && *row ? epoch_of_.Int(0) : -1;
      epoch_of_.Reset();
      if (!row.ok()) return row.status();
      if (epoch != u.epoch) {
        batch->fenced.push_back(u.job_id);
        continue;
      }
    }
    update_job_.Bind(1, StateName(u.state))
        .Bind(2, static_cast<int64_t>(u.attempts))
        .Bind(3, u.run_at)
        .Bind(4, u.last_tried);
    if (u.finished_at) {
      update_job_.Bind(5, u.finished_at);
    } else {
      update_job_.BindNull(5);
    }
    auto text_or_null = [&](int i, const std::string& s) {
      if (s.empty()) {
        update_job_.BindNull(i);
      } else {
        update_job_.Bind(i, std::string_view(s));
      }
    };
    text_or_null(6, u.error.code);
    text_or_null(7, u.error.message);
    text_or_null(8, u.error.detail);
    text_or_null(9, u.result);
    update_job_.Bind(10, static_cast<int64_t>(u.interruptions));
    update_job_.Bind(11, static_cast<int64_t>(u.priority));
    update_job_.Bind(12, u.job_id);
    Status st = update_job_.Run();
    if (!st.ok()) return st.Annotate("job " + std::to_string(u.job_id));
    for (const Event& e : u.events) {
      batch->appended.push_back(e);
      SLUICE_RETURN_IF_ERROR(InsertEvent(&batch->appended.back()));
    }
    for (const ObjectRow& row : u.rows) {
      if (row.table < 0 || static_cast<size_t>(row.table) >= upserts_.size()) {
        return Status::Internal("job " + std::to_string(u.job_id) + ": undefined table");
      }
      Stmt& up = upserts_[static_cast<size_t>(row.table)];
      for (size_t i = 0; i < row.values.size(); ++i) {
        up.Bind(static_cast<int>(i + 1), row.values[i]);
      }
      st = up.Run();
      if (!st.ok()) {
        return st.Annotate("job " + std::to_string(u.job_id) + ": upsert into " +
                           tables_[static_cast<size_t>(row.table)].name);
      }
    }
  }
  return Status::Ok();
}

Status SqliteStore::Write(WriteBatch* batch) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(write_.Exec("BEGIN IMMEDIATE"));
  batch->appended.clear();
  batch->fenced.clear();
  // Jobs given without an id get SQLite's; a failed write takes back only those (the others'
  // ids are their callers', who answer and track them by it).
  std::vector<size_t> numbered_here;
  for (size_t i = 0; i < batch->new_jobs.size(); ++i) {
    if (batch->new_jobs[i].id == 0) numbered_here.push_back(i);
  }
  Status st = WriteLocked(batch);
  if (st.ok()) st = write_.Exec("COMMIT");
  if (st.ok() && !batch->fenced.empty()) {
    // As on PostgreSQL: the stale updates are taken out of the batch.
    std::set<int64_t> stale(batch->fenced.begin(), batch->fenced.end());
    std::erase_if(batch->updates,
                  [&](const JobUpdate& u) { return u.epoch > 0 && stale.count(u.job_id) > 0; });
  }
  if (!st.ok()) {
    (void)write_.Exec("ROLLBACK");
    for (size_t i : numbered_here) batch->new_jobs[i].id = 0;
    batch->appended.clear();
    batch->fenced.clear();
  }
  return st;
}

Result<int64_t> SqliteStore::ReserveJobIds(int64_t count) {
  std::lock_guard<std::mutex> ids(ids_mu_);
  if (next_job_id_ == 0) {
    std::lock_guard<std::mutex> lock(read_mu_);
    auto s = Stmt::Prepare(read_.get(),
                           "SELECT MAX(COALESCE((SELECT MAX(id) FROM jobs), 0),"
                           " COALESCE((SELECT seq FROM sqlite_sequence WHERE name='jobs'), 0))");
    if (!s.ok()) return s.status();
    auto row = s->Step();
    if (!row.ok()) return row.status();
    next_job_id_ = s->Int(0) + 1;
  }
  int64_t first = next_job_id_;
  next_job_id_ += std::max<int64_t>(count, 1);
  return first;
}

Result<int64_t> SqliteStore::MarkRetried(const std::vector<int64_t>& ids, int64_t at) {
  int64_t marked = 0;
  if (ids.empty()) return marked;
  Status st = InWriteTransaction([&]() -> Status {
    auto s = Stmt::Prepare(write_.get(),
                           "UPDATE jobs SET retried_at=? WHERE id=? AND retried_at=0"
                           " AND state IN ('failed','cancelled')");
    if (!s.ok()) return s.status();
    for (int64_t id : ids) {
      SLUICE_RETURN_IF_ERROR(s->Bind(1, std::max<int64_t>(at, 1)).Bind(2, id).Run());
      marked += sqlite3_changes(write_.get());
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return marked;
}

Result<std::vector<Job>> SqliteStore::QueryJobs(const std::string& tail,
                                                const std::vector<Value>& args) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), "SELECT " + std::string(kJobColumns) + " FROM jobs " + tail);
  if (!s.ok()) return s.status();
  for (size_t i = 0; i < args.size(); ++i) s->Bind(static_cast<int>(i + 1), args[i]);
  std::vector<Job> jobs;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    jobs.push_back(ReadJob(*s));
  }
  return jobs;
}

Result<Job> SqliteStore::GetJob(int64_t id) {
  auto jobs = QueryJobs("WHERE id=?", {Value(id)});
  if (!jobs.ok()) return jobs.status();
  if (jobs->empty()) return Status::NotFound("no job " + std::to_string(id));
  return std::move(jobs->front());
}

Result<std::vector<Job>> SqliteStore::ListJobs(const JobFilter& f) {
  std::string where;
  std::vector<Value> args;
  if (f.state) {
    where += " AND state=?";
    args.emplace_back(std::string(StateName(*f.state)));
  }
  if (f.name) {
    where += " AND name=?";
    args.emplace_back(*f.name);
  }
  if (f.queue) {
    where += " AND queue=?";
    args.emplace_back(*f.queue);
  }
  if (f.kind) {
    where += " AND kind=?";
    args.emplace_back(*f.kind);
  }
  if (f.spool) {
    where += " AND spool=?";
    args.emplace_back(*f.spool);
  }
  if (f.error_code) {
    where += " AND error_code=?";
    args.emplace_back(*f.error_code);
  }
  if (f.retried) where += *f.retried ? " AND retried_at<>0" : " AND retried_at=0";
  if (f.before_id > 0) {
    where += f.newest_first ? " AND id<?" : " AND id>?";
    args.emplace_back(f.before_id);
  }
  if (f.min_id > 0 && f.newest_first) {
    where += " AND id>=?";
    args.emplace_back(f.min_id);
  }
  std::string tail = where.empty() ? "" : "WHERE " + where.substr(5);
  tail += f.newest_first ? " ORDER BY id DESC" : " ORDER BY id ASC";
  tail += " LIMIT " + std::to_string(f.limit);
  return QueryJobs(tail, args);
}

Result<std::vector<Job>> SqliteStore::UnfinishedJobs() {
  auto jobs = QueryJobs("WHERE state IN " + UnendedStatesSql() + " ORDER BY id", {});
  if (!jobs.ok()) return jobs;
  // Payloads only here, where a job must be run again; listings stay light.
  SLUICE_RETURN_IF_ERROR(FillPayloads(&*jobs));
  return jobs;
}

Result<std::string> SqliteStore::JobPayload(int64_t id) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), "SELECT COALESCE(payload, '') FROM jobs WHERE id=?");
  if (!s.ok()) return s.status();
  s->Bind(1, id);
  auto row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound("no job " + std::to_string(id));
  return s->Text(0);
}

Result<std::optional<Job>> SqliteStore::FindJobByIdempotencyKey(const std::string& key) {
  auto jobs = QueryJobs("WHERE idempotency_key=?", {Value(key)});
  if (!jobs.ok()) return jobs.status();
  if (jobs->empty()) return std::optional<Job>();
  return std::optional<Job>(std::move(jobs->front()));
}

Result<std::optional<Job>> SqliteStore::LatestJobForFile(const std::string& spool,
                                                         const std::string& name) {
  std::lock_guard<std::mutex> lock(read_mu_);
  latest_for_file_.Bind(1, spool).Bind(2, name);
  auto row = latest_for_file_.Step();
  std::optional<Job> job;
  if (row.ok() && *row) job = ReadJob(latest_for_file_);
  latest_for_file_.Reset();
  if (!row.ok()) return row.status();
  return job;
}

Result<std::map<std::string, int64_t>> SqliteStore::CountJobsByState() {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), sqlite::JobCountsSql(""));
  if (!s.ok()) return s.status();
  std::map<std::string, int64_t> counts;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    counts[s->Text(0)] = s->Int(1);
  }
  return counts;
}

Result<std::map<std::pair<std::string, std::string>, int64_t>> SqliteStore::CountJobsByQueue() {
  return CountJobsBy("queue");
}

Result<std::map<std::pair<std::string, std::string>, int64_t>> SqliteStore::CountJobsBySpool() {
  return CountJobsBy("spool");
}

Result<std::map<std::pair<std::string, std::string>, int64_t>> SqliteStore::CountJobsBy(
    const std::string& column) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), sqlite::JobCountsSql(column));
  if (!s.ok()) return s.status();
  std::map<std::pair<std::string, std::string>, int64_t> counts;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    counts[{s->Text(0), s->Text(1)}] = s->Int(2);
  }
  return counts;
}

Result<JobsSummary> SqliteStore::SummarizeJobs(int64_t now, int minutes) {
  std::lock_guard<std::mutex> lock(read_mu_);
  JobsSummary out;
  auto run = [&](const std::string& sql, const std::vector<Value>& args,
                 const std::function<void(Stmt&)>& row) -> Status {
    auto s = Stmt::Prepare(read_.get(), sql);
    if (!s.ok()) return s.status();
    for (size_t i = 0; i < args.size(); ++i) s->Bind(static_cast<int>(i + 1), args[i]);
    while (true) {
      auto r = s->Step();
      if (!r.ok()) return r.status();
      if (!*r) return Status::Ok();
      row(*s);
    }
  };
  SLUICE_RETURN_IF_ERROR(
      run("SELECT queue, MIN(created_at) FROM jobs WHERE state IN ('queued', 'retrying') "
          "GROUP BY queue",
          {}, [&](Stmt& s) { out.oldest_waiting[s.Text(0)] = s.Int(1); }));
  SLUICE_RETURN_IF_ERROR(
      run("SELECT error_code, SUM(n) FROM ended_job_counts WHERE state = 'failed' AND retried = 0 "
          "GROUP BY 1 HAVING SUM(n) > 0 ORDER BY 2 DESC, 1",
          {}, [&](Stmt& s) { out.failures.emplace_back(s.Text(0), s.Int(1)); }));
  const int64_t kMinute = 60'000'000;
  int64_t first = (now / kMinute - minutes + 1) * kMinute;
  for (int i = 0; i < minutes; ++i) out.per_minute.push_back({first + i * kMinute, 0, 0});
  // A range count per minute walks the (finished_at, state) index alone; one GROUP BY over
  // the expression would sort every row of the window.
  for (JobsSummary::Minute& m : out.per_minute) {
    SLUICE_RETURN_IF_ERROR(
        run(sqlite::kEndedInRangeSql, {Value(m.start), Value(m.start + kMinute)}, [&](Stmt& s) {
          m.failed = s.Int(1);
          m.succeeded = s.Int(0) - m.failed;
        }));
  }
  return out;
}

Result<int64_t> SqliteStore::CountRows(const std::string& table) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), "SELECT COUNT(*) FROM " + Quote(table));
  if (!s.ok()) return s.status();
  auto row = s->Step();
  if (!row.ok()) return row.status();
  return s->Int(0);
}

Result<std::optional<std::string>> SqliteStore::GetValue(const std::string& ns,
                                                         const std::string& key) {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), "SELECT value FROM kv WHERE ns=? AND key=?");
  if (!s.ok()) return s.status();
  s->Bind(1, ns).Bind(2, key);
  auto row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(s->Text(0));
}

Status SqliteStore::PutValue(const std::string& ns, const std::string& key,
                             const std::string& value) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto s = Stmt::Prepare(write_.get(), "INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?,?,?)");
  if (!s.ok()) return s.status();
  return s->Bind(1, ns).Bind(2, key).Bind(3, value).Run();
}

Result<std::string> SqliteStore::SettleValue(const std::string& ns, const std::string& key,
                                             const std::string& value) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto put =
      Stmt::Prepare(write_.get(), "INSERT OR IGNORE INTO kv (ns, key, value) VALUES (?,?,?)");
  if (!put.ok()) return put.status();
  SLUICE_RETURN_IF_ERROR(put->Bind(1, ns).Bind(2, key).Bind(3, value).Run());
  auto s = Stmt::Prepare(write_.get(), "SELECT value FROM kv WHERE ns=? AND key=?");
  if (!s.ok()) return s.status();
  s->Bind(1, ns).Bind(2, key);
  auto row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::Internal("kv " + ns + "/" + key + " vanished");
  return s->Text(0);
}

Status SqliteStore::ImportRows(const std::vector<ObjectRow>& rows) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(write_.Exec("BEGIN IMMEDIATE"));
  Status st;
  for (const ObjectRow& row : rows) {
    if (row.table < 0 || static_cast<size_t>(row.table) >= upserts_.size()) {
      st = Status::Internal("undefined table");
      break;
    }
    Stmt& up = upserts_[static_cast<size_t>(row.table)];
    for (size_t i = 0; i < row.values.size(); ++i) up.Bind(static_cast<int>(i + 1), row.values[i]);
    st = up.Run();
    if (!st.ok()) break;
  }
  if (st.ok()) return write_.Exec("COMMIT");
  (void)write_.Exec("ROLLBACK");
  return st;
}

Result<std::vector<ObjectRow>> SqliteStore::ScanRows(int table, const std::string& after_key,
                                                     int limit) {
  TableSpec spec;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (table < 0 || static_cast<size_t>(table) >= tables_.size()) {
      return Status::InvalidArgument("no table " + std::to_string(table));
    }
    spec = tables_[static_cast<size_t>(table)];
  }
  std::string cols, key;
  for (const ColumnSpec& c : spec.columns) {
    cols += (cols.empty() ? "" : ", ") + Quote(c.name);
    if (c.merge == MergeRule::kKey) key = Quote(c.name);
  }
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), "SELECT " + cols + " FROM " + Quote(spec.name) + " WHERE " +
                                          key + " > ? ORDER BY " + key + " LIMIT ?");
  if (!s.ok()) return s.status();
  s->Bind(1, after_key).Bind(2, int64_t{limit});
  return ReadObjectRows(&*s, table, spec, nullptr);
}

Result<std::vector<ObjectRow>> ReadObjectRows(Stmt* s, int table, const TableSpec& spec,
                                              std::string* last_key) {
  std::vector<ObjectRow> rows;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ObjectRow r{table, {}};
    for (size_t i = 0; i < spec.columns.size(); ++i) {
      int c = static_cast<int>(i);
      if (s->IsNull(c)) {
        r.values.emplace_back();
      } else if (spec.columns[i].type == ColumnType::kInteger) {
        r.values.emplace_back(s->Int(c));
      } else if (spec.columns[i].type == ColumnType::kReal) {
        r.values.emplace_back(s->Real(c));
      } else {
        r.values.emplace_back(s->Text(c));
      }
      if (last_key != nullptr && spec.columns[i].merge == MergeRule::kKey) *last_key = s->Text(c);
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

Status SqliteStore::CheckIntegrity() {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), "PRAGMA integrity_check");
  if (!s.ok()) return s.status();
  std::string report;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    report += s->Text(0) + "\n";
  }
  if (report != "ok\n") return Status::Internal("integrity_check: " + report);
  return Status::Ok();
}

}  // namespace sluice
