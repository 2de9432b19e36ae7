// SqliteStore: ended jobs past a retention, found and deleted (engine/retention.h).
#include "store/schema.h"
#include "store/sqlite/sqlite_store.h"

namespace sluice {

using sqlite::Stmt;

namespace {

std::string JsonIds(const std::vector<int64_t>& ids) {
  std::string out = "[";
  for (int64_t id : ids) out += (out.size() > 1 ? "," : "") + std::to_string(id);
  return out + "]";
}

}  // namespace

Result<std::vector<Job>> SqliteStore::EndedJobsBefore(const std::vector<JobState>& states,
                                                      int64_t before,
                                                      const EndedJobsPosition& after, int limit) {
  std::lock_guard<std::mutex> lock(
      write_mu_);  // the writer's thread asks; the read lane is the API's
  // A range of the (finished_at, state) index, in its order (without statistics the planner
  // would take the state index and sort every ended job). Unfinished jobs have no finished_at.
  auto s = Stmt::Prepare(
      write_.get(),
      "SELECT id, state, spool, name, file_dev, file_ino, file_size, file_mtime_ns, finished_at,"
      " attempts"
      " FROM jobs INDEXED BY jobs_finished WHERE (finished_at, state, id) > (?1, ?2, ?3)"
      " AND finished_at < ?4 AND " +
          StatesSql(states) + " ORDER BY finished_at, state, id LIMIT ?5");
  if (!s.ok()) return s.status();
  s->Bind(1, after.finished_at)
      .Bind(2, after.state)
      .Bind(3, after.id)
      .Bind(4, before)
      .Bind(5, static_cast<int64_t>(limit));
  std::vector<Job> jobs;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Job j;
    j.id = s->Int(0);
    auto state = ParseState(s->Text(1));
    j.state = state.ok() ? *state : JobState::kFailed;
    j.spool = s->Text(2);
    j.name = s->Text(3);
    j.file.dev = static_cast<uint64_t>(s->Int(4));
    j.file.ino = static_cast<uint64_t>(s->Int(5));
    j.file.size = static_cast<uint64_t>(s->Int(6));
    j.file.mtime_ns = s->Int(7);
    j.finished_at = s->Int(8);
    j.attempts = static_cast<int>(s->Int(9));
    jobs.push_back(std::move(j));
  }
  return jobs;
}

Result<int64_t> SqliteStore::DeleteEndedJobs(const std::vector<int64_t>& ids,
                                             const std::vector<JobState>& states, int64_t before) {
  std::vector<int64_t> gone;
  if (ids.empty()) return int64_t{0};
  // Two statements for the whole chunk: a statement that fires the counts' triggers copies
  // each page it changes into a statement journal, once per statement, not once per job.
  Status st = InWriteTransaction([&]() -> Status {
    auto jobs = Stmt::Prepare(write_.get(),
                              "DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?1))"
                              " AND finished_at < ?2 AND " +
                                  StatesSql(states) + " RETURNING id");
    if (!jobs.ok()) return jobs.status();
    jobs->Bind(1, JsonIds(ids)).Bind(2, before);
    while (true) {
      auto row = jobs->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      gone.push_back(jobs->Int(0));  // the others changed meanwhile (retried): kept
    }
    jobs->Reset();
    if (gone.empty()) return Status::Ok();
    auto events = Stmt::Prepare(
        write_.get(), "DELETE FROM events WHERE job_id IN (SELECT value FROM json_each(?1))");
    if (!events.ok()) return events.status();
    return events->Bind(1, JsonIds(gone)).Run();
  });
  if (!st.ok()) return st;
  return static_cast<int64_t>(gone.size());
}

}  // namespace sluice
