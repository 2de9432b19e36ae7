// SqliteStore: ended jobs past a retention, found and deleted (engine/retention.h).
#include "store/schema.h"
#include "store/sqlite/sqlite_store.h"

namespace sluice {

using sqlite::Stmt;

Result<std::vector<Job>> SqliteStore::EndedJobsBefore(const std::vector<JobState>& states,
                                                      int64_t before,
                                                      std::pair<int64_t, int64_t> after,
                                                      int limit) {
  std::lock_guard<std::mutex> lock(
      write_mu_);  // the writer's thread asks; the read lane is the API's
  // A range of the (finished_at, state) index; unfinished jobs have no finished_at.
  auto s = Stmt::Prepare(
      write_.get(),
      "SELECT id, state, spool, name, file_dev, file_ino, file_size, file_mtime_ns, finished_at"
      " FROM jobs WHERE finished_at >= ?1 AND finished_at < ?2 AND (finished_at > ?1 OR id > ?3)"
      " AND " +
          StatesSql(states) + " ORDER BY finished_at, id LIMIT ?4");
  if (!s.ok()) return s.status();
  s->Bind(1, std::max<int64_t>(after.first, 1))
      .Bind(2, before)
      .Bind(3, after.second)
      .Bind(4, limit);
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
    jobs.push_back(std::move(j));
  }
  return jobs;
}

Result<int64_t> SqliteStore::DeleteEndedJobs(const std::vector<int64_t>& ids,
                                             const std::vector<JobState>& states, int64_t before) {
  int64_t gone = 0;
  if (ids.empty()) return gone;
  Status st = InWriteTransaction([&]() -> Status {
    auto job = Stmt::Prepare(
        write_.get(), "DELETE FROM jobs WHERE id=?1 AND finished_at < ?2 AND " + StatesSql(states));
    if (!job.ok()) return job.status();
    auto events = Stmt::Prepare(write_.get(), "DELETE FROM events WHERE job_id=?");
    if (!events.ok()) return events.status();
    for (int64_t id : ids) {
      SLUICE_RETURN_IF_ERROR(job->Bind(1, id).Bind(2, before).Run());
      if (sqlite3_changes(write_.get()) == 0) continue;  // changed meanwhile (retried): kept
      ++gone;
      SLUICE_RETURN_IF_ERROR(events->Bind(1, id).Run());
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return gone;
}

}  // namespace sluice
