// Store: the source of truth for jobs and the objects handlers ingest. SQLite in embedded mode;
// the interface is kept narrow so a PostgreSQL store can pass the same conformance suite.
//
// Durability: every mutating call commits one transaction before it returns OK; after OK the
// change survives a crash (SQLite WAL with synchronous=FULL).
// Thread safety: all methods may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/event.h"
#include "store/job.h"
#include "store/objects.h"
#include "store/task.h"

namespace sluice {

// A claim another write is fenced on: applied only while job `job_id`'s lease_epoch is still
// `epoch` (nobody claimed the job since).
struct JobFence {
  int64_t job_id = 0;
  int64_t epoch = 0;
};

// What a write fenced on `fence` returns when the job was claimed again meanwhile.
inline Status Fenced(const JobFence& fence) {
  return Status::FailedPrecondition("fenced: job " + std::to_string(fence.job_id) +
                                    " was claimed again since its claim at epoch " +
                                    std::to_string(fence.epoch));
}

// A change to one job, applied by ApplyUpdates together with others in one transaction.
struct JobUpdate {
  int64_t job_id = 0;
  JobState state = JobState::kQueued;
  int attempts = 0;
  int interruptions = 0;
  int priority = 0;
  int64_t run_at = 0;
  int64_t last_tried = 0;
  int64_t finished_at = 0;
  JobError error;
  std::string result;
  std::vector<ObjectRow> rows;  // objects to upsert in the same transaction as the state
  std::vector<Event> events;    // appended in the same transaction (state change, log lines)
  // > 0: fenced. Applied only while the job's lease_epoch is still this one (the claim that
  // ran it was not taken over); otherwise dropped whole, its events and rows with it, and
  // the job is named in WriteBatch::fenced and the update taken out of `updates`. 0: applied
  // as it is (the embedded engine).
  int64_t epoch = 0;
};

// The stored fields of `job` as an update (no rows, no events).
JobUpdate UpdateOf(const Job& job);
// FailedPrecondition: `job` is not waiting (queued or retrying), naming its state.
Status NotWaiting(const Job& job);

struct WriteBatch {
  std::vector<Job> new_jobs;
  std::vector<JobUpdate> updates;
  // Output of Write: the events it appended, with their ids, in id order.
  std::vector<Event> appended;
  // Set by a store whose commits can end in doubt (a server lost while it committed): the
  // batch's mark in the database, so that writing the same batch again finds out whether the
  // first try committed, and does not apply it twice.
  std::string token;
  // Output of Write: jobs whose fenced update was stale and dropped.
  std::vector<int64_t> fenced;
  // Role leases ({name, epoch}) `holder` must still hold for the batch to commit: else Write
  // commits nothing and answers Cancelled ("lease taken over: NAME"), and the daemon must stop
  // (another one runs that spool now).
  std::string holder;
  std::vector<std::pair<std::string, int64_t>> holds;
  bool empty() const { return new_jobs.empty() && updates.empty(); }
};

// A role held by one process at a time (a spool's discovery, the scheduler): see TakeLease.
struct Lease {
  std::string name;
  std::string owner;
  int64_t epoch = 0;
  int64_t until = 0;  // wall-clock micros
};

// What the dashboard's overview shows besides the counts (Store::SummarizeJobs).
struct JobsSummary {
  std::map<std::string, int64_t> oldest_waiting;          // queue -> created_at of its oldest
  std::vector<std::pair<std::string, int64_t>> failures;  // error code -> failed jobs, most first
  // Jobs ended per minute over the last `minutes` minutes, oldest first: {minute start (wall
  // micros), succeeded, failed}.
  struct Minute {
    int64_t start = 0;
    int64_t succeeded = 0;
    int64_t failed = 0;
  };
  std::vector<Minute> per_minute;
};

struct JobFilter {
  std::optional<JobState> state;
  std::optional<std::string> name;  // exact file name
  std::optional<std::string> queue;
  std::optional<std::string> kind;
  std::optional<std::string> spool;       // the spool directory ("" : jobs sent over HTTP)
  std::optional<std::string> error_code;  // failed (or cancelled) with this code
  std::optional<bool> retried;            // whether the job's file was put back (retried_at)
  int64_t before_id = 0;  // with newest_first: only ids below this (pagination cursor)
  int64_t min_id = 0;     // with newest_first: only ids at or above this (a bounded scan)
  int limit = 100;
  bool newest_first = true;
};

// Where a walk of ended jobs (Store::EndedJobsBefore) stopped: the last job it gave, in the
// order (finished_at, state name, id). The default is before every job.
struct EndedJobsPosition {
  int64_t finished_at = 0;
  std::string state;
  int64_t id = 0;
  static EndedJobsPosition Of(const Job& j) {
    return {j.finished_at, std::string(StateName(j.state)), j.id};
  }
};

class Store {
 public:
  virtual ~Store() = default;

  // Declares the object tables handlers will upsert into; creates missing tables and missing
  // columns. Must be called before ApplyUpdates carries rows. Table indexes in ObjectRow refer
  // to positions in `tables`.
  virtual Status DefineTables(const std::vector<TableSpec>& tables) = 0;

  // Inserts batch->new_jobs (with the ids they carry, or new ones when 0), appending each one's
  // state event, and applies batch->updates with their rows and events, all in ONE
  // transaction: all or nothing. On success batch->appended holds the events written, with
  // their ids (monotonic, never reused). On error nothing is written, and the message names the
  // job whose update failed when it is known. This is the group commit of the engine.
  virtual Status Write(WriteBatch* batch) = 0;

  // Reserves `count` consecutive job ids no process sharing this store was or will be given,
  // above every stored one; returns the first. The engine takes ids from such blocks.
  virtual Result<int64_t> ReserveJobIds(int64_t count) = 0;

  // Records that these failed or cancelled spool files' jobs had their files put back into the
  // spool (retried_at = at), in one transaction. Jobs marked already, not ended so, or no
  // longer stored (pruned: engine/retention.h) are left as they are. How many it marked.
  virtual Result<int64_t> MarkRetried(const std::vector<int64_t>& ids, int64_t at) = 0;

  // Fenced claims. Claims each of `ids` that may run now (queued or retrying and due at
  // `now`, or running under a lease that ran out before `now`): running, one more attempt,
  // lease_epoch one higher, owned by `owner` until `until`. Returns the jobs claimed, as
  // they are now; a job another process claimed first is left out. One transaction; no
  // event is written (the caller writes the claim's event with the epoch).
  virtual Result<std::vector<Job>> ClaimJobs(const std::vector<int64_t>& ids,
                                             const std::string& owner, int64_t until,
                                             int64_t now) = 0;
  // For a control command (cancel, prioritise) on a waiting (queued or retrying) job that
  // any process may claim at any moment: raises its lease epoch and returns the job as it is
  // now. A claim taking it meanwhile raises the epoch again, so an update fenced on the
  // returned epoch is applied only if nobody claimed the job in between. NotFound for an
  // unknown job; FailedPrecondition naming its state for one that is not waiting.
  virtual Result<Job> ReserveWaitingJob(int64_t id) = 0;
  // Extends the leases of claims still held ({job id, epoch}) until `until`; returns the ids
  // whose claim was taken over (their work must stop; their results would be dropped).
  virtual Result<std::vector<int64_t>> ExtendClaims(
      const std::vector<std::pair<int64_t, int64_t>>& claims, int64_t until) = 0;
  // Moves the unfinished jobs among `ids` whose lease_owner is `from` ("": none) to `to`;
  // returns those it moved. Two daemons adopting the jobs of a dead one split them: each
  // job goes to one.
  virtual Result<std::vector<int64_t>> AdoptJobs(const std::vector<int64_t>& ids,
                                                 const std::string& from,
                                                 const std::string& to) = 0;
  // Takes or renews the role `name` for `owner` until `until`: renewing keeps the epoch;
  // taking it over from an owner whose lease ran out before `now` (or taking it the first
  // time) gives a higher one. nullopt while another owner holds it.
  virtual Result<std::optional<int64_t>> TakeLease(const std::string& name,
                                                   const std::string& owner, int64_t until,
                                                   int64_t now) = 0;
  // Gives the role up (only while `owner` still holds it at `epoch`).
  virtual Status ReleaseLease(const std::string& name, const std::string& owner, int64_t epoch) = 0;
  virtual Result<std::vector<Lease>> ListLeases() = 0;
  // Forgets the leases whose name starts with `prefix` and that ended before `ended_before`
  // (a daemon's own lease, once it is long gone). The number forgotten.
  virtual Result<int64_t> PruneLeases(const std::string& prefix, int64_t ended_before) = 0;

  virtual Result<Job> GetJob(int64_t id) = 0;
  virtual Result<std::vector<Job>> ListJobs(const JobFilter& filter) = 0;
  // The payload a job was submitted with (empty for a spool file's job).
  virtual Result<std::string> JobPayload(int64_t id) = 0;
  // Every job not in a final state (deferred ones too), oldest first, with its payload
  // (recovery on start).
  virtual Result<std::vector<Job>> UnfinishedJobs() = 0;
  // Sets the payload of each job of `jobs` sent over HTTP (listings leave them out).
  Status FillPayloads(std::vector<Job>* jobs);
  // The job submitted with `key`, if any.
  virtual Result<std::optional<Job>> FindJobByIdempotencyKey(const std::string& key) = 0;
  // The newest job for a spool file name, if any.
  virtual Result<std::optional<Job>> LatestJobForFile(const std::string& spool,
                                                      const std::string& name) = 0;
  virtual Result<std::map<std::string, int64_t>> CountJobsByState() = 0;
  // Job counts by (queue, state).
  virtual Result<std::map<std::pair<std::string, std::string>, int64_t>> CountJobsByQueue() = 0;
  // The oldest waiting (queued or retrying) job of each queue, failed jobs by error code, and
  // jobs ended per minute in the `minutes` minutes before `now`.
  virtual Result<JobsSummary> SummarizeJobs(int64_t now, int minutes) = 0;
  // Job counts by (spool directory, state); "" for jobs sent over HTTP.
  virtual Result<std::map<std::pair<std::string, std::string>, int64_t>> CountJobsBySpool() = 0;
  virtual Result<int64_t> CountRows(const std::string& table) = 0;

  // Events passing `filter` with ids above filter.after_id, oldest first, at most filter.limit.
  virtual Result<std::vector<Event>> ListEvents(const EventFilter& filter) = 0;
  // The smallest and largest event ids kept (0, 0 when there are none).
  virtual Result<std::pair<int64_t, int64_t>> EventIdRange() = 0;
  // Deletes events older than `retention.max_age_s` (by `now`, wall micros) or beyond the
  // newest `retention.max_count`. How many went.
  virtual Result<int64_t> PruneEvents(const EventRetention& retention, int64_t now) = 0;

  // Jobs past a retention (engine/retention.h): those in `states` (ended states) that finished
  // before `before`, after `after` in the order of (finished_at, state, id) — the order of the
  // (finished_at, state) index —, at most `limit`; with their id, state, spool, name, file,
  // finished_at and attempts only.
  virtual Result<std::vector<Job>> EndedJobsBefore(const std::vector<JobState>& states,
                                                   int64_t before, const EndedJobsPosition& after,
                                                   int limit) = 0;
  // Deletes those of `ids` still in `states` and finished before `before`, with their events,
  // in one transaction. How many went.
  virtual Result<int64_t> DeleteEndedJobs(const std::vector<int64_t>& ids,
                                          const std::vector<JobState>& states, int64_t before) = 0;

  // A small durable key-value map per namespace (e.g. the upload dedup cache).
  virtual Result<std::optional<std::string>> GetValue(const std::string& ns,
                                                      const std::string& key) = 0;
  virtual Status PutValue(const std::string& ns, const std::string& key,
                          const std::string& value) = 0;
  // The value of (ns, key), set to `value` if it has none: of several processes calling it at
  // once, the first one's value is set, and every one gets that.
  virtual Result<std::string> SettleValue(const std::string& ns, const std::string& key,
                                          const std::string& value) = 0;

  // Recurring tasks. AddTasks writes all of `tasks` or none (AlreadyExists naming a task_id
  // already stored) and sets their seq; `events`, when given, are appended in the same
  // transaction (their ids set).
  virtual Status AddTasks(std::vector<Task>* tasks, std::vector<Event>* events = nullptr) = 0;
  virtual Result<std::vector<Task>> ListTasks() = 0;  // by task_id
  virtual Result<Task> GetTask(const std::string& task_id) = 0;
  // Deletes the tasks and cancels their waiting runs, in one transaction; their runs and items
  // stay. For each id, whether it was there.
  virtual Result<std::vector<bool>> RemoveTasks(const std::vector<std::string>& task_ids) = 0;
  // In one transaction: inserts `items` (those the task already has are skipped: their seq
  // stays 0; the others get theirs), then calls `settle` (which may fill in the run from what
  // was new), then writes `run` when given, updates `task` (matched by seq: NotFound when it
  // was removed) and appends `event` when given (its id is set). With `fence`: first checks
  // that job `fence->job_id` is still held at `fence->epoch` (a run carried by a cluster job:
  // the worker that claimed it last), else writes nothing and returns FailedPrecondition.
  using SettleRun = std::function<void(TaskRun*)>;
  virtual Status SaveTask(const Task& task, TaskRun* run, std::vector<TaskItem>* items,
                          const SettleRun& settle = nullptr, Event* event = nullptr,
                          const JobFence* fence = nullptr) = 0;
  // The state of each of `tasks` (matched by seq) with `events`, all in one transaction or
  // none (NotFound naming a task removed).
  virtual Status SaveTaskStates(const std::vector<Task>& tasks, std::vector<Event>* events) = 0;
  virtual Result<TaskRun> GetTaskRun(const std::string& job_id) = 0;
  // The runs of the task stored under `task_seq`, by job number.
  virtual Result<std::vector<TaskRun>> ListTaskRuns(int64_t task_seq) = 0;
  // Its newest `newest` runs, by job number, with their job_id and job_number only.
  virtual Result<std::vector<TaskRun>> ListTaskRunIds(int64_t task_seq, int newest) = 0;
  // Deletes the task's runs numbered below `below_number` that have ended (finished, failed,
  // canceled); how many.
  virtual Result<int64_t> PruneTaskRuns(int64_t task_seq, int64_t below_number) = 0;
  // Items of a task with seq above `after_seq`, in seq order, at most `limit`.
  virtual Result<std::vector<TaskItem>> ListItems(int64_t task_seq, int64_t after_seq,
                                                  int limit) = 0;

  // Runs the database's own consistency check; Internal with its report when it fails.
  virtual Status CheckIntegrity() = 0;

  // Upserts `rows` (with each column's merge rule) in one transaction, outside any job: for
  // moving a store's objects to another. Upserting a row again changes nothing.
  virtual Status ImportRows(const std::vector<ObjectRow>& rows) = 0;

  // Rows of object table `table` (an index into the DefineTables list) with keys above
  // `after_key`, in key order, at most `limit`; values as the store reads them back (text,
  // integer or real, by the column's type).
  virtual Result<std::vector<ObjectRow>> ScanRows(int table, const std::string& after_key,
                                                  int limit) = 0;

  // False while the database cannot be reached (a server store in an outage); the store logs
  // the outage once and its end once.
  virtual bool Reachable() const { return true; }
  // Whether other processes may write to the same database (then live events must be read
  // back from it, not only from this process's commits).
  virtual bool Shared() const { return false; }
  // A shared store: waits up to `timeout_ms` for word that events were committed (by any
  // process); false on timeout. Others just wait.
  virtual Result<bool> WaitForEvents(int timeout_ms);
};

struct StoreOptions {
  std::string pg_schema = "sluice";  // PostgreSQL: the schema Sluice's own tables live in
};

// Opens the store named by `url`, bringing its schema up to date: "sqlite:PATH" (PATH
// relative to the working directory; created when it does not exist yet), or PostgreSQL:
// "postgresql://…", "postgres://…" or a libpq "key=value …" string (PG* variables and
// ~/.pgpass apply as in psql).
Result<std::unique_ptr<Store>> OpenStore(const std::string& url, const StoreOptions& options = {});
// The same for commands that only read: a SQLite file, or a PostgreSQL schema, that holds
// no store yet is NotFound, never created empty.
Result<std::unique_ptr<Store>> OpenExistingStore(const std::string& url,
                                                 const StoreOptions& options = {});
// Whether `url` names a PostgreSQL database.
bool IsPostgresUrl(const std::string& url);
// The file a "sqlite:PATH" url names ("" for other urls).
std::string SqliteFileOf(const std::string& url);
// `url` as logs and errors may show it: a SQLite path, or the PostgreSQL server, database,
// user and schema (never a password).
std::string DescribeStore(const std::string& url, const StoreOptions& options = {});

}  // namespace sluice
