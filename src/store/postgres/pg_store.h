// PgStore: the Store on PostgreSQL, shared by any number of daemons.
//
// Sluice's own tables live in one schema (StoreOptions::pg_schema, default "sluice"); object
// tables (the KCIDB ones) where the connection's search_path puts them, written as they are
// when they exist (the KernelCI dashboard's own tables).
//
// Ids. Job ids come from a counter row (<schema>.counters 'jobs') in blocks. Event ids come
// from the counter row 'events', taken inside the writing transaction, after everything else
// it writes and just before its commit: the row lock serialises committers from that moment
// to their commit, and PostgreSQL makes a transaction visible before it releases its locks.
// So the next writer can only take ids after the previous one's events are visible: events
// become visible in id order, and a reader that has seen id N never later finds a smaller
// one (a plain sequence would not give this: ids are taken in one order and committed in
// another). Writes without events never take that lock.
//
// Writes. One Write is one pipeline (all statements sent at once, one round trip, one
// implicit transaction committed at its Sync): jobs inserted and updated in bulk (unnest of
// arrays), object rows upserted one statement each (prepared), events in bulk, and a row in
// <schema>.commits holding the batch's token. When the connection is lost, a retry of the
// same batch first looks for its token: found, the first try committed and nothing is
// applied again.
//
// Outages: a lost connection is reconnected on next use (at most every half second); the
// store logs one line when the database becomes unreachable and one when it is back.
// Thread safety: one write connection and one read connection, each behind its mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/postgres/pg_conn.h"
#include "store/schema.h"
#include "store/store.h"

namespace sluice {

class PgStore : public Store {
 public:
  // Connects (Unavailable naming the server when it cannot) and applies missing migrations.
  static Result<std::unique_ptr<PgStore>> Open(const std::string& conninfo,
                                               const StoreOptions& options);
  // The schema version and the migrations without applying any.
  static Result<SchemaReport> Check(const std::string& conninfo, const StoreOptions& options);

  const SchemaReport& schema() const { return schema_; }
  // "host H port P database D user U" (never a password).
  const std::string& server() const { return server_; }

  Status DefineTables(const std::vector<TableSpec>& tables) override;
  Status Write(WriteBatch* batch) override;
  Result<int64_t> ReserveJobIds(int64_t count) override;
  Result<int64_t> MarkRetried(const std::vector<int64_t>& ids, int64_t at) override;
  Result<Job> ReserveWaitingJob(int64_t id) override;
  Result<std::vector<Job>> ClaimJobs(const std::vector<int64_t>& ids, const std::string& owner,
                                     int64_t until, int64_t now) override;
  Result<std::vector<int64_t>> ExtendClaims(const std::vector<std::pair<int64_t, int64_t>>& claims,
                                            int64_t until) override;
  Result<std::vector<int64_t>> AdoptJobs(const std::vector<int64_t>& ids, const std::string& from,
                                         const std::string& to) override;
  Result<std::optional<int64_t>> TakeLease(const std::string& name, const std::string& owner,
                                           int64_t until, int64_t now) override;
  Status ReleaseLease(const std::string& name, const std::string& owner, int64_t epoch) override;
  Result<std::vector<Lease>> ListLeases() override;
  Result<int64_t> PruneLeases(const std::string& prefix, int64_t ended_before) override;
  Result<Job> GetJob(int64_t id) override;
  Result<std::vector<Job>> ListJobs(const JobFilter& filter) override;
  Result<std::vector<Job>> UnfinishedJobs() override;
  Result<std::string> JobPayload(int64_t id) override;
  Result<std::optional<Job>> FindJobByIdempotencyKey(const std::string& key) override;
  Result<std::optional<Job>> LatestJobForFile(const std::string& spool,
                                              const std::string& name) override;
  Result<std::map<std::string, int64_t>> CountJobsByState() override;
  Result<std::map<std::pair<std::string, std::string>, int64_t>> CountJobsByQueue() override;
  Result<JobsSummary> SummarizeJobs(int64_t now, int minutes) override;
  Result<std::map<std::pair<std::string, std::string>, int64_t>> CountJobsBySpool() override;
  Result<int64_t> CountRows(const std::string& table) override;
  Result<std::vector<Event>> ListEvents(const EventFilter& filter) override;
  Result<std::pair<int64_t, int64_t>> EventIdRange() override;
  Result<int64_t> PruneEvents(const EventRetention& retention, int64_t now) override;
  Result<std::vector<Job>> EndedJobsBefore(const std::vector<JobState>& states, int64_t before,
                                           const EndedJobsPosition& after, int limit) override;
  Result<int64_t> DeleteEndedJobs(const std::vector<int64_t>& ids,
                                  const std::vector<JobState>& states, int64_t before) override;
  Result<std::optional<std::string>> GetValue(const std::string& ns,
                                              const std::string& key) override;
  Status PutValue(const std::string& ns, const std::string& key, const std::string& value) override;
  Result<std::string> SettleValue(const std::string& ns, const std::string& key,
                                  const std::string& value) override;
  Status CheckIntegrity() override;
  Status AddTasks(std::vector<Task>* tasks, std::vector<Event>* events = nullptr) override;
  Result<std::vector<Task>> ListTasks() override;
  Result<Task> GetTask(const std::string& task_id) override;
  Result<std::vector<bool>> RemoveTasks(const std::vector<std::string>& task_ids) override;
  Status SaveTaskStates(const std::vector<Task>& tasks, std::vector<Event>* events) override;
  Status SaveTask(const Task& task, TaskRun* run, std::vector<TaskItem>* items,
                  const SettleRun& settle, Event* event, const JobFence* fence) override;
  Result<TaskRun> GetTaskRun(const std::string& job_id) override;
  Result<std::vector<TaskRun>> ListTaskRuns(int64_t task_seq) override;
  Result<std::vector<TaskRun>> ListTaskRunIds(int64_t task_seq, int newest) override;
  Result<int64_t> PruneTaskRuns(int64_t task_seq, int64_t below_number) override;
  Result<std::vector<TaskItem>> ListItems(int64_t task_seq, int64_t after_seq, int limit) override;
  Status ImportRows(const std::vector<ObjectRow>& rows) override;
  Result<std::vector<ObjectRow>> ScanRows(int table, const std::string& after_key,
                                          int limit) override;
  bool Reachable() const override { return !outage_.load(); }
  bool Shared() const override { return true; }

  // Waits up to `timeout_ms` for a notice that events were committed (by any daemon).
  // False on timeout. Uses a third connection (LISTEN).
  Result<bool> WaitForEvents(int timeout_ms) override;

  // The qualified name of one of Sluice's tables: "sluice"."jobs".
  std::string T(std::string_view table) const;

 private:
  // One object table as it is in the database.
  struct Column {
    int spec = -1;  // index in the TableSpec (-1: not written)
    std::string name;
    std::string type;   // format_type: "text", "timestamp with time zone", "text[]", …
    int max_chars = 0;  // varchar(n): n
  };
  struct Table {
    TableSpec spec;
    std::string qualified;        // as written in statements
    std::vector<Column> columns;  // the spec's columns the table has, in spec order
    std::string upsert;           // the prepared upsert's SQL
    std::string upsert_name;      // its statement name
  };

  explicit PgStore(std::string conninfo, StoreOptions options);
  Status Init();
  // Reconnects `conn` when it is lost (at most every 500 ms); a failure starts an outage, a
  // success ends one.
  Status Ensure(pg::Conn* conn);
  // After a call on `conn` (its mutex held): success ends an outage; a lost connection that
  // cannot be made again at once starts one. Returns `st`.
  Status Note(const Status& st, pg::Conn* conn);
  void Outage(const Status& why);  // logs the start of an outage, once
  void Back();                     // logs its end, once
  std::chrono::steady_clock::time_point& TriedAt(pg::Conn* conn);
  // Runs `sql` on the read connection, reconnecting and trying once more when the
  // connection was lost.
  Result<pg::Rows> Read(const std::string& sql, const std::vector<pg::Param>& params);
  Result<pg::Rows> WriteExec(const std::string& sql, const std::vector<pg::Param>& params);
  Result<std::vector<Job>> QueryJobs(const std::string& tail, const std::vector<pg::Param>& params);
  Result<std::vector<Task>> QueryTasks(const std::string& tail,
                                       const std::vector<pg::Param>& params);
  Result<std::vector<TaskRun>> QueryRuns(const std::string& tail,
                                         const std::vector<pg::Param>& params);
  Result<std::map<std::pair<std::string, std::string>, int64_t>> CountJobsBy(
      const std::string& column);
  // The jobs counted by `columns` (which end with state) as one derived table "c" with n:
  // ended_job_counts and its changes not folded yet (`where` applied to both), and without a
  // `where` the jobs not ended, counted from the jobs; one statement, one snapshot.
  std::string JobCounts(const std::string& columns, const std::string& where) const;
  // Moves the ended jobs' count changes into ended_job_counts (fold_ended_job_counts()) at
  // most every 5 s, after a write: whatever process writes keeps them short; a failure waits
  // for the next time.
  void FoldJobCountsIfDue();
  // DefineTables under the advisory lock that keeps two processes from creating them at once.
  Status DefineTablesLocked(const std::vector<TableSpec>& tables);
  Status DefineTable(const TableSpec& spec, Table* out);
  // The write's statements, or InvalidArgument naming the job and the value a column cannot
  // hold (too long for its varchar, a NUL character).
  // Whose statement each one is: the job, and the object row it upserts (if it does).
  struct Owner {
    int64_t job = 0;
    const ObjectRow* row = nullptr;
  };
  Status BuildWrite(const WriteBatch& batch, std::vector<pg::Query>* queries,
                    std::vector<Owner>* owners) const;
  // "job N: TABLE 'ID', field F (TYPE)": what a failed row statement was about.
  std::string RowContext(const Owner& owner, const pg::Query& q, const Status& st) const;
  Status CheckRow(int64_t job, const Table& t, const ObjectRow& row) const;
  // Whether the batch with this token committed: its first event id when it did.
  Result<std::optional<int64_t>> FindCommit(const std::string& token);
  // In an explicit transaction on the write connection: takes n event ids under the counter's
  // lock and appends events[0..n) with them, in one statement; sets their ids.
  Status AppendEventsLocked(Event* events, size_t n);
  Status UpdateTaskStateLocked(const Task& task);  // write_mu_ held, in a transaction

  std::string conninfo_;
  StoreOptions options_;
  std::string schema_q_;  // the quoted schema name
  std::string server_;
  SchemaReport schema_;
  std::atomic<bool> outage_{false};
  std::chrono::steady_clock::time_point outage_since_;

  std::mutex write_mu_;
  pg::Conn write_;
  std::chrono::steady_clock::time_point write_tried_{};
  std::vector<Table> tables_;
  std::chrono::steady_clock::time_point last_fold_{};

  std::mutex read_mu_;
  pg::Conn read_;
  std::chrono::steady_clock::time_point read_tried_{};

  std::mutex listen_mu_;
  pg::Conn listen_;
  std::chrono::steady_clock::time_point listen_tried_{};

  std::mutex outage_mu_;  // outage_since_ and the transition lines
};

}  // namespace sluice
