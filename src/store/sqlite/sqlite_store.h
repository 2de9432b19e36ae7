// SqliteStore: the embedded Store on one SQLite file in WAL mode.
//
// One write connection (all writes serialise on it; the engine's writer thread batches them)
// and one read connection, so readers (sluice jobs, recovery) never wait for a commit.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/schema.h"
#include "store/sqlite/checkpointer.h"
#include "store/sqlite/sqlite_db.h"
#include "store/store.h"

namespace sluice {

class SqliteStore : public Store {
 public:
  // Opens (creating if needed) the database at `path` and its job tables.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  // The schema version it found and the migrations it applied on opening.
  const SchemaReport& schema() const { return schema_; }

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
  Status ImportRows(const std::vector<ObjectRow>& rows) override;
  Result<std::vector<ObjectRow>> ScanRows(int table, const std::string& after_key,
                                          int limit) override;
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

 private:
  SqliteStore() = default;
  Status Init(const std::string& path);
  // Job counts by (`column`, state).
  Result<std::map<std::pair<std::string, std::string>, int64_t>> CountJobsBy(
      const std::string& column);
  Result<std::vector<Job>> QueryJobs(const std::string& where_order_limit,
                                     const std::vector<Value>& args);
  Status WriteLocked(WriteBatch* batch);
  Status DefineTablesLocked(const std::vector<TableSpec>& tables);
  Result<std::vector<Task>> QueryTasks(const std::string& where, const std::vector<Value>& args);
  Result<std::vector<TaskRun>> QueryRuns(const std::string& where, const std::vector<Value>& args);
  Status UpdateTaskStateLocked(const Task& task);  // write_mu_ held, in a transaction
  // Runs `body` in one write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on error).
  Status InWriteTransaction(const std::function<Status()>& body);
  // Inserts `e` (write_mu_ held, inside a transaction) and sets its id.
  Status InsertEvent(Event* e);

  SchemaReport schema_;
  std::unique_ptr<sqlite::Checkpointer> checkpointer_;  // outlives write_, its WAL hook's user
  std::mutex write_mu_;
  sqlite::Db write_;
  sqlite::Stmt insert_job_;
  sqlite::Stmt update_job_;
  sqlite::Stmt epoch_of_;  // a job's lease_epoch, for fenced updates
  sqlite::Stmt insert_event_;
  std::vector<TableSpec> tables_;
  std::vector<sqlite::Stmt> upserts_;

  // One daemon per database file: ids are reserved in memory, after the largest stored one.
  std::mutex ids_mu_;
  int64_t next_job_id_ = 0;  // 0: not read yet

  std::mutex read_mu_;
  sqlite::Db read_;
  sqlite::Stmt latest_for_file_;  // on read_, prepared once
};

// The object rows of table `table` that `s` yields (its columns in `spec`'s order, a NULL
// kept as none); `*last_key`, when given, gets the key of the last one.
Result<std::vector<ObjectRow>> ReadObjectRows(sqlite::Stmt* s, int table, const TableSpec& spec,
                                              std::string* last_key);

}  // namespace sluice
