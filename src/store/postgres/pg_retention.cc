// PgStore: ended jobs past a retention, found and deleted (engine/retention.h).
#include "store/postgres/pg_store.h"
#include "store/schema.h"

namespace sluice {

using pg::Param;

Result<std::vector<Job>> PgStore::EndedJobsBefore(const std::vector<JobState>& states,
                                                  int64_t before, const EndedJobsPosition& after,
                                                  int limit) {
  std::lock_guard<std::mutex> lock(write_mu_);  // the pruner's writer asks; reads are the API's
  // A range of the (finished_at, state) index, in its order.
  auto r = WriteExec(
      "SELECT id, state, spool, name, file_dev, file_ino, file_size, file_mtime_ns, finished_at,"
      " attempts"
      " FROM " +
          T("jobs") + " WHERE (finished_at, state, id) > ($1, $2, $3) AND finished_at < $4 AND " +
          StatesSql(states) + " ORDER BY finished_at, state, id LIMIT $5",
      {Param(after.finished_at), Param(after.state), Param(after.id), Param(before),
       Param(static_cast<int64_t>(limit))});
  if (!r.ok()) return r.status();
  std::vector<Job> jobs;
  for (int i = 0; i < r->size(); ++i) {
    Job j;
    j.id = r->Int(i, 0);
    auto state = ParseState(r->Text(i, 1));
    j.state = state.ok() ? *state : JobState::kFailed;
    j.spool = r->Text(i, 2);
    j.name = r->Text(i, 3);
    j.file.dev = static_cast<uint64_t>(r->Int(i, 4));
    j.file.ino = static_cast<uint64_t>(r->Int(i, 5));
    j.file.size = static_cast<uint64_t>(r->Int(i, 6));
    j.file.mtime_ns = r->Int(i, 7);
    j.finished_at = r->Int(i, 8);
    j.attempts = static_cast<int>(r->Int(i, 9));
    jobs.push_back(std::move(j));
  }
  return jobs;
}

Result<int64_t> PgStore::DeleteEndedJobs(const std::vector<int64_t>& ids,
                                         const std::vector<JobState>& states, int64_t before) {
  if (ids.empty()) return int64_t{0};
  std::lock_guard<std::mutex> lock(write_mu_);
  std::vector<Param> list;
  for (int64_t id : ids) list.emplace_back(id);
  // One statement, so one transaction: the jobs still past the retention, then their events.
  auto r =
      WriteExec("WITH gone AS (DELETE FROM " + T("jobs") +
                    " WHERE id = ANY($1::bigint[]) AND finished_at < $2 AND " + StatesSql(states) +
                    " RETURNING id), events AS (DELETE FROM " + T("events") +
                    " WHERE job_id IN (SELECT id FROM gone)) SELECT count(*) FROM gone",
                {pg::ArrayLiteral(list), Param(before)});
  if (!r.ok()) return r.status();
  return r->Int(0, 0);
}

}  // namespace sluice
