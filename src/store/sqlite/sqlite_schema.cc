// The SQLite store's schema versions.
#include "store/sqlite/sqlite_schema.h"

namespace sluice::sqlite {
namespace {

// Version 1: jobs, events, tasks, task runs, items and the key-value map.
constexpr std::string_view kVersion1 = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  kind TEXT NOT NULL,
  spool TEXT NOT NULL,
  name TEXT NOT NULL,
  file_dev INTEGER, file_ino INTEGER, file_size INTEGER, file_mtime_ns INTEGER,
  state TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  interruptions INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  run_at INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  last_tried INTEGER,
  finished_at INTEGER,
  error_code TEXT, error_message TEXT, error_detail TEXT,
  result TEXT,
  payload TEXT,
  idempotency_key TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs(idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_file ON jobs(spool, name);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts INTEGER NOT NULL,
  job_id INTEGER NOT NULL,
  queue TEXT NOT NULL,
  kind TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id, id);
CREATE TABLE IF NOT EXISTS tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL UNIQUE,
  backend TEXT NOT NULL, category TEXT NOT NULL,
  backend_args TEXT NOT NULL, archive TEXT NOT NULL, fetch_from_archive INTEGER NOT NULL,
  delay_s INTEGER NOT NULL, max_retries INTEGER NOT NULL, max_age INTEGER NOT NULL,
  queue TEXT NOT NULL,
  status TEXT NOT NULL, age INTEGER NOT NULL, num_failures INTEGER NOT NULL,
  created_on INTEGER NOT NULL, next_run_at INTEGER NOT NULL,
  next_from_date TEXT NOT NULL, next_offset INTEGER, current_job TEXT NOT NULL,
  scheduler_given INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS task_runs (
  job_id TEXT PRIMARY KEY,
  task_seq INTEGER NOT NULL, task_id TEXT NOT NULL, job_number INTEGER NOT NULL,
  queue TEXT NOT NULL, status TEXT NOT NULL,
  created_at INTEGER NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,
  lease_until INTEGER NOT NULL,
  args TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL, log TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS task_runs_task ON task_runs(task_seq, job_number);
CREATE TABLE IF NOT EXISTS items (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  task_seq INTEGER NOT NULL, task_id TEXT NOT NULL,
  uuid TEXT NOT NULL, updated_on INTEGER NOT NULL, data TEXT NOT NULL,
  UNIQUE (task_seq, uuid));
CREATE TABLE IF NOT EXISTS kv (
  ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (ns, key)) WITHOUT ROWID;
)sql";

// A database made before versions were recorded has the version-1 tables, but releases of
// that time added a column as they went: add it when it is missing.
Status CompleteUnversioned(Db& db) {
  auto info = Stmt::Prepare(db.get(), "PRAGMA table_info(tasks)");
  if (!info.ok()) return info.status();
  bool present = false;
  while (true) {
    auto row = info->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    present = present || info->Text(1) == "scheduler_given";
  }
  if (present) return Status::Ok();
  return db.Exec("ALTER TABLE tasks ADD COLUMN scheduler_given INTEGER NOT NULL DEFAULT 1");
}

Result<int> ReadVersion(Db& db, bool* unversioned) {
  auto v = Stmt::Prepare(db.get(), "PRAGMA user_version");
  if (!v.ok()) return v.status();
  auto row = v->Step();
  if (!row.ok()) return row.status();
  int version = static_cast<int>(v->Int(0));
  *unversioned = false;
  if (version != 0) return version;
  auto t =
      Stmt::Prepare(db.get(), "SELECT 1 FROM sqlite_master WHERE type='table' AND name='jobs'");
  if (!t.ok()) return t.status();
  auto has = t->Step();
  if (!has.ok()) return has.status();
  *unversioned = *has;
  return *has ? 1 : 0;
}

}  // namespace

// Version 2: fenced claims. A claim bumps a job's lease_epoch; a write that carries an
// epoch applies only while it is still the job's. Roles (a spool's discovery, the
// scheduler) hold rows of `leases` the same way.
constexpr std::string_view kVersion2 = R"sql(
ALTER TABLE jobs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  until INTEGER NOT NULL);
)sql";

// Version 3: what the dashboard asks of a large store stays quick: jobs ended per minute
// (finished_at), a file name searched, failed jobs counted by error code, jobs counted by
// queue and state (each read from an index alone).
constexpr std::string_view kVersion3 = R"sql(
CREATE INDEX jobs_finished ON jobs(finished_at, state);
CREATE INDEX jobs_name ON jobs(name);
CREATE INDEX jobs_state_code ON jobs(state, error_code);
CREATE INDEX jobs_queue_state ON jobs(queue, state);
)sql";

// Version 4: a spool file's failed job records when its file was put back into the spool
// (retried_at), so it leaves the failure counts and cannot be retried twice; failed jobs are
// still counted by error code from an index alone.
constexpr std::string_view kVersion4 = R"sql(
ALTER TABLE jobs ADD COLUMN retried_at INTEGER NOT NULL DEFAULT 0;
DROP INDEX jobs_state_code;
CREATE INDEX jobs_state_code ON jobs(state, error_code, retried_at);
)sql";

// Version 5: ended jobs (succeeded, failed, cancelled) counted by queue, spool, state, error
// code and whether retried, kept by triggers in the transaction of each change. Counting the
// jobs table walked an index of every job ever run: /metrics, /api/v1/queues and the
// overview took 0.29-0.36 s on five million jobs, growing with the history (a Prometheus
// scrape, every dashboard refresh). Jobs not ended are few (the backlog the engine holds) and
// are counted from the state index at each read. The triggers do their work only when a job
// enters or leaves an ended state (once per job, at its end). Measured, and why they read as
// they do: the writer's statements carry OR ROLLBACK (a failed statement rolls the whole
// write back anyway), without which a statement that fires a writing trigger copies every
// page it touches into a statement journal (the no-op drain four times slower); the states
// are compared with OR, as an IN list builds a temporary index at each trigger call, and the
// count's row is made with INSERT ... ON CONFLICT DO NOTHING, as INSERT ... SELECT of the
// same table goes through a temporary table (the two together: 30% slower).
//
// The text is built from the pieces below once; like every migration's, it must not change
// once released.
const std::string& Version5() {
  static const std::string sql = [] {
    auto ended = [](const std::string& row) {
      return "(" + row + ".state = 'succeeded' OR " + row + ".state = 'failed' OR " + row +
             ".state = 'cancelled')";
    };
    auto key = [](const std::string& row) {
      return "queue = " + row + ".queue AND spool = " + row + ".spool AND state = " + row +
             ".state\n    AND error_code = COALESCE(" + row + ".error_code, '') AND retried = (" +
             row + ".retried_at != 0)";
    };
    const std::string one_more =
        "  INSERT INTO ended_job_counts VALUES (NEW.queue, NEW.spool, NEW.state,\n"
        "    COALESCE(NEW.error_code, ''), NEW.retried_at != 0, 0) ON CONFLICT DO NOTHING;\n"
        "  UPDATE ended_job_counts SET n = n + 1\n  WHERE " +
        key("NEW") + ";\n";
    const std::string one_fewer =
        "  UPDATE ended_job_counts SET n = n - 1\n  WHERE " + key("OLD") + ";\n";
    const std::string changed =
        "(OLD.queue IS NOT NEW.queue OR OLD.spool IS NOT NEW.spool OR OLD.state IS NOT NEW.state\n"
        "    OR COALESCE(OLD.error_code, '') IS NOT COALESCE(NEW.error_code, '')\n"
        "    OR (OLD.retried_at != 0) IS NOT (NEW.retried_at != 0))";
    const std::string on_update =
        " AFTER UPDATE OF queue, spool, state, error_code, retried_at ON jobs\n  WHEN ";
    return std::string(
               "CREATE TABLE ended_job_counts (\n"
               "  queue TEXT NOT NULL, spool TEXT NOT NULL, state TEXT NOT NULL,\n"
               "  error_code TEXT NOT NULL, retried INTEGER NOT NULL, n INTEGER NOT NULL,\n"
               "  PRIMARY KEY (queue, spool, state, error_code, retried)) WITHOUT ROWID;\n"
               "INSERT INTO ended_job_counts\n"
               "  SELECT queue, spool, state, COALESCE(error_code, ''), retried_at != 0, "
               "COUNT(*)\n"
               "  FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') "
               "GROUP BY 1, 2, 3, 4, 5;\n") +
           "CREATE TRIGGER ended_job_counts_insert AFTER INSERT ON jobs\n  WHEN " + ended("NEW") +
           "\nBEGIN\n" + one_more + "END;\n" +
           "CREATE TRIGGER ended_job_counts_delete AFTER DELETE ON jobs\n  WHEN " + ended("OLD") +
           "\nBEGIN\n" + one_fewer + "END;\n" + "CREATE TRIGGER ended_job_counts_leave" +
           on_update + ended("OLD") + "\n  AND " + changed + "\nBEGIN\n" + one_fewer + "END;\n" +
           "CREATE TRIGGER ended_job_counts_enter" + on_update + ended("NEW") + "\n  AND " +
           changed + "\nBEGIN\n" + one_more + "END;\n";
  }();
  return sql;
}

const std::vector<Migration>& StoreMigrations() {
  static const std::vector<Migration> kList = {
      {1, "jobs, events, tasks, task runs, items, key-value map", std::string(kVersion1)},
      {2, "lease epochs on jobs, role leases", std::string(kVersion2)},
      {3, "indexes for the dashboard", std::string(kVersion3)},
      {4, "retried_at on jobs", std::string(kVersion4)},
      {5, "ended jobs counted by triggers", Version5()},
  };
  return kList;
}

std::string JobCountsSql(const std::string& columns) {
  std::string keys = columns.empty() ? "state" : columns + ", state";
  return "SELECT " + keys + ", SUM(n) FROM (SELECT " + keys + ", n FROM ended_job_counts" +
         " UNION ALL SELECT " + keys +
         ", COUNT(*) FROM jobs INDEXED BY jobs_state WHERE state IN " + UnendedStatesSql() +
         " GROUP BY " + keys + ") GROUP BY " + keys + " HAVING SUM(n) > 0";
}

Result<int> SchemaVersion(Db& db) {
  bool unversioned = false;
  return ReadVersion(db, &unversioned);
}

Status Migrate(Db& db, const std::vector<Migration>& list, const std::string& name,
               SchemaReport* report) {
  report->latest = list.empty() ? 0 : list.back().version;
  for (const Migration& m : list) {
    // One transaction per step; the write lock is taken first, so a second process waits
    // here and then finds the step done.
    SLUICE_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    bool unversioned = false;
    auto version = ReadVersion(db, &unversioned);
    Status st = version.status();
    if (st.ok() && *version > report->latest) st = RefuseNewer(*version, report->latest, name);
    if (st.ok() && unversioned) {
      // Record the version it has, so the next steps start from it.
      st = CompleteUnversioned(db);
      if (st.ok()) st = db.Exec("PRAGMA user_version = 1");
    }
    bool apply = st.ok() && *version < m.version;
    if (apply) st = db.Exec(m.sql);
    if (apply && st.ok()) st = db.Exec("PRAGMA user_version = " + std::to_string(m.version));
    if (st.ok()) st = db.Exec("COMMIT");
    if (!st.ok()) {
      (void)db.Exec("ROLLBACK");
      return apply ? st.Annotate("migration " + std::to_string(m.version) + " (" + m.what + ")")
                   : st;
    }
    if (apply) report->applied.push_back(std::to_string(m.version) + ": " + m.what);
  }
  auto version = SchemaVersion(db);
  if (!version.ok()) return version.status();
  report->version = *version;
  if (*version > report->latest) return RefuseNewer(*version, report->latest, name);
  return Status::Ok();
}

}  // namespace sluice::sqlite
