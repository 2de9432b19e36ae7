// PgStore: reading jobs and events, and pruning events.
#include <algorithm>

#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_store.h"
#include "store/schema.h"

namespace sluice {

using pg::Param;

namespace {

constexpr std::string_view kJobColumns =
    "id, queue, kind, spool, name, file_dev, file_ino, file_size, file_mtime_ns, state, "
    "priority, attempts, max_attempts, run_at, created_at, last_tried, finished_at, "
    "error_code, error_message, error_detail, result, interruptions, idempotency_key, "
    "lease_epoch, lease_owner, lease_until, retried_at";

Job ReadJob(const pg::Rows& r, int i) {
  auto text = [&](int c) { return r.IsNull(i, c) ? std::string() : r.Text(i, c); };
  auto num = [&](int c) { return r.IsNull(i, c) ? int64_t{0} : r.Int(i, c); };
  Job j;
  j.id = num(0);
  j.queue = text(1);
  j.kind = text(2);
  j.spool = text(3);
  j.name = text(4);
  j.file.dev = static_cast<uint64_t>(num(5));
  j.file.ino = static_cast<uint64_t>(num(6));
  j.file.size = static_cast<uint64_t>(num(7));
  j.file.mtime_ns = num(8);
  auto state = ParseState(text(9));
  j.state = state.ok() ? *state : JobState::kFailed;
  j.priority = static_cast<int>(num(10));
  j.attempts = static_cast<int>(num(11));
  j.max_attempts = static_cast<int>(num(12));
  j.run_at = num(13);
  j.created_at = num(14);
  j.last_tried = num(15);
  j.finished_at = num(16);
  j.error.code = text(17);
  j.error.message = text(18);
  j.error.detail = text(19);
  j.result = text(20);
  j.interruptions = static_cast<int>(num(21));
  j.idempotency_key = text(22);
  j.lease_epoch = num(23);
  j.lease_owner = text(24);
  j.lease_until = num(25);
  j.retried_at = num(26);
  return j;
}

}  // namespace

Result<std::vector<Job>> PgStore::QueryJobs(const std::string& tail,
                                            const std::vector<Param>& params) {
  auto r = Read("SELECT " + std::string(kJobColumns) + " FROM " + T("jobs") + " " + tail, params);
  if (!r.ok()) return r.status();
  std::vector<Job> jobs;
  jobs.reserve(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) jobs.push_back(ReadJob(*r, i));
  return jobs;
}

Result<Job> PgStore::GetJob(int64_t id) {
  auto jobs = QueryJobs("WHERE id = $1", {Param(id)});
  if (!jobs.ok()) return jobs.status();
  if (jobs->empty()) return Status::NotFound("no job " + std::to_string(id));
  return std::move(jobs->front());
}

Result<std::vector<Job>> PgStore::ListJobs(const JobFilter& f) {
  std::string where;
  std::vector<Param> params;
  auto cond = [&](const std::string& sql, Param p) {
    params.push_back(std::move(p));
    where += (where.empty() ? "WHERE " : " AND ") + sql + "$" + std::to_string(params.size());
  };
  if (f.state) cond("state = ", std::string(StateName(*f.state)));
  if (f.name) cond("name = ", *f.name);
  if (f.queue) cond("queue = ", *f.queue);
  if (f.kind) cond("kind = ", *f.kind);
  if (f.spool) cond("spool = ", *f.spool);
  if (f.error_code) cond("error_code = ", *f.error_code);
  if (f.retried) {
    where += (where.empty() ? "WHERE " : " AND ") +
             std::string(*f.retried ? "retried_at <> 0" : "retried_at = 0");
  }
  if (f.before_id > 0) cond(f.newest_first ? "id < " : "id > ", f.before_id);
  if (f.min_id > 0 && f.newest_first) cond("id >= ", f.min_id);
  where += f.newest_first ? " ORDER BY id DESC" : " ORDER BY id ASC";
  where += " LIMIT " + std::to_string(std::max(1, f.limit));
  return QueryJobs(where, params);
}

Result<std::vector<Job>> PgStore::UnfinishedJobs() {
  auto jobs = QueryJobs("WHERE state IN " + UnendedStatesSql() + " ORDER BY id", {});
  if (!jobs.ok()) return jobs;
  // Payloads only here, where a job must be run again; listings stay light.
  SLUICE_RETURN_IF_ERROR(FillPayloads(&*jobs));
  return jobs;
}

Result<std::string> PgStore::JobPayload(int64_t id) {
  auto r = Read("SELECT COALESCE(payload, '') FROM " + T("jobs") + " WHERE id = $1", {Param(id)});
  if (!r.ok()) return r.status();
  if (r->size() == 0) return Status::NotFound("no job " + std::to_string(id));
  return r->Text(0, 0);
}

Result<std::optional<Job>> PgStore::FindJobByIdempotencyKey(const std::string& key) {
  auto jobs = QueryJobs("WHERE idempotency_key = $1", {Param(key)});
  if (!jobs.ok()) return jobs.status();
  if (jobs->empty()) return std::optional<Job>();
  return std::optional<Job>(std::move(jobs->front()));
}

Result<std::optional<Job>> PgStore::LatestJobForFile(const std::string& spool,
                                                     const std::string& name) {
  auto jobs = QueryJobs("WHERE spool = $1 AND name = $2 ORDER BY id DESC LIMIT 1",
                        {Param(spool), Param(name)});
  if (!jobs.ok()) return jobs.status();
  if (jobs->empty()) return std::optional<Job>();
  return std::optional<Job>(std::move(jobs->front()));
}

std::string PgStore::JobCounts(const std::string& columns, const std::string& where) const {
  std::string filter = where.empty() ? "" : " WHERE " + where;
  std::string sql = "(SELECT " + columns + ", n FROM " + T("ended_job_counts") + filter +
                    " UNION ALL SELECT " + columns + ", n FROM " + T("ended_job_count_changes") +
                    filter;
  if (where.empty()) {
    sql += " UNION ALL SELECT " + columns + ", COUNT(*) FROM " + T("jobs") + " WHERE state IN " +
           UnendedStatesSql() + " GROUP BY " + columns;
  }
  return sql + ") AS c";
}

Result<std::map<std::string, int64_t>> PgStore::CountJobsByState() {
  auto r = Read(
      "SELECT state, SUM(n) FROM " + JobCounts("state", "") + " GROUP BY 1 HAVING SUM(n) > 0", {});
  if (!r.ok()) return r.status();
  std::map<std::string, int64_t> counts;
  for (int i = 0; i < r->size(); ++i) counts[r->Text(i, 0)] = r->Int(i, 1);
  return counts;
}

Result<std::map<std::pair<std::string, std::string>, int64_t>> PgStore::CountJobsByQueue() {
  return CountJobsBy("queue");
}

Result<std::map<std::pair<std::string, std::string>, int64_t>> PgStore::CountJobsBySpool() {
  return CountJobsBy("spool");
}

Result<JobsSummary> PgStore::SummarizeJobs(int64_t now, int minutes) {
  JobsSummary out;
  auto oldest = Read("SELECT queue, MIN(created_at) FROM " + T("jobs") +
                         " WHERE state IN ('queued', 'retrying') GROUP BY queue",
                     {});
  if (!oldest.ok()) return oldest.status();
  for (int i = 0; i < oldest->size(); ++i)
    out.oldest_waiting[oldest->Text(i, 0)] = oldest->Int(i, 1);
  auto failures = Read("SELECT error_code, SUM(n) FROM " +
                           JobCounts("error_code", "state = 'failed' AND NOT retried") +
                           " GROUP BY 1 HAVING SUM(n) > 0 ORDER BY 2 DESC, 1",
                       {});
  if (!failures.ok()) return failures.status();
  for (int i = 0; i < failures->size(); ++i) {
    out.failures.emplace_back(failures->Text(i, 0), failures->Int(i, 1));
  }
  const int64_t kMinute = 60'000'000;
  int64_t first = (now / kMinute - minutes + 1) * kMinute;
  for (int i = 0; i < minutes; ++i) out.per_minute.push_back({first + i * kMinute, 0, 0});
  auto ended = Read("SELECT finished_at / 60000000, state, COUNT(*) FROM " + T("jobs") +
                        " WHERE finished_at >= $1 AND state IN ('succeeded', 'failed')"
                        " GROUP BY 1, 2",
                    {Param(first)});
  if (!ended.ok()) return ended.status();
  for (int i = 0; i < ended->size(); ++i) {
    int64_t m = ended->Int(i, 0) - first / kMinute;
    if (m < 0 || m >= minutes) continue;
    (ended->Text(i, 1) == "failed" ? out.per_minute[m].failed : out.per_minute[m].succeeded) +=
        ended->Int(i, 2);
  }
  return out;
}

Result<std::map<std::pair<std::string, std::string>, int64_t>> PgStore::CountJobsBy(
    const std::string& column) {
  auto r = Read("SELECT " + column + ", state, SUM(n) FROM " + JobCounts(column + ", state", "") +
                    " GROUP BY 1, 2 HAVING SUM(n) > 0",
                {});
  if (!r.ok()) return r.status();
  std::map<std::pair<std::string, std::string>, int64_t> counts;
  for (int i = 0; i < r->size(); ++i) counts[{r->Text(i, 0), r->Text(i, 1)}] = r->Int(i, 2);
  return counts;
}

Result<int64_t> PgStore::CountRows(const std::string& table) {
  auto r = Read("SELECT COUNT(*) FROM " + pg::QuoteIdent(table), {});
  if (!r.ok()) return r.status();
  return r->Int(0, 0);
}

Result<std::vector<Event>> PgStore::ListEvents(const EventFilter& f) {
  std::string sql =
      "SELECT id, ts, job_id, queue, kind, type, data FROM " + T("events") + " WHERE id > $1";
  std::vector<Param> params{Param(f.after_id)};
  auto cond = [&](const std::string& what, Param p) {
    params.push_back(std::move(p));
    sql += " AND " + what + "$" + std::to_string(params.size());
  };
  if (f.job_id != 0) cond("job_id = ", f.job_id);
  if (f.queue) cond("queue = ", *f.queue);
  if (f.kind) cond("kind = ", *f.kind);
  if (!f.types.empty()) {
    std::vector<Param> types(f.types.begin(), f.types.end());
    cond("type = ANY(", pg::ArrayLiteral(types));
    sql += "::text[])";
  }
  sql += " ORDER BY id LIMIT " + std::to_string(std::max(1, f.limit));
  auto r = Read(sql, params);
  if (!r.ok()) return r.status();
  std::vector<Event> events;
  events.reserve(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) {
    Event e;
    e.id = r->Int(i, 0);
    e.ts = r->Int(i, 1);
    e.job_id = r->Int(i, 2);
    e.queue = r->Text(i, 3);
    e.kind = r->Text(i, 4);
    e.type = r->Text(i, 5);
    e.data = r->Text(i, 6);
    events.push_back(std::move(e));
  }
  return events;
}

Result<std::pair<int64_t, int64_t>> PgStore::EventIdRange() {
  auto r = Read("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM " + T("events"), {});
  if (!r.ok()) return r.status();
  return std::make_pair(r->Int(0, 0), r->Int(0, 1));
}

Result<int64_t> PgStore::PruneEvents(const EventRetention& retention, int64_t now) {
  std::lock_guard<std::mutex> lock(write_mu_);
  // As on SQLite: too old is an id prefix; so is beyond the newest max_count. Records of old
  // commits go too (a retry comes within minutes, not a day).
  auto cut = WriteExec("SELECT GREATEST(COALESCE((SELECT id FROM " + T("events") +
                           " WHERE ts >= $1 ORDER BY id LIMIT 1), (SELECT MAX(id) + 1 FROM " +
                           T("events") + "), 0), COALESCE((SELECT MAX(id) FROM " + T("events") +
                           "), 0) - $2 + 1)",
                       {Param(now - retention.max_age_s * 1'000'000), Param(retention.max_count)});
  if (!cut.ok()) return cut.status();
  auto del = WriteExec("DELETE FROM " + T("events") + " WHERE id < $1", {Param(cut->Int(0, 0))});
  if (!del.ok()) return del.status();
  auto old = WriteExec("DELETE FROM " + T("commits") + " WHERE at < $1",
                       {Param(now - int64_t{24} * 3600 * 1'000'000)});
  if (!old.ok()) return old.status();
  return del->Affected();
}

}  // namespace sluice
