// PgStore: fenced claims and role leases (schema version 2). Each call is one statement, so
// one transaction; two processes claiming one job serialise on its row and only the first
// finds it claimable.
#include <algorithm>

#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_store.h"

namespace sluice {

using pg::Param;

Result<std::vector<Job>> PgStore::ClaimJobs(const std::vector<int64_t>& ids,
                                            const std::string& owner, int64_t until, int64_t now) {
  std::vector<Param> list;
  for (int64_t id : ids) list.emplace_back(id);
  Result<pg::Rows> r = Status::Ok();
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    r = WriteExec("UPDATE " + T("jobs") +
                      " SET state = 'running', attempts = attempts + 1, last_tried = $1,"
                      " lease_epoch = lease_epoch + 1, lease_owner = $2, lease_until = $3"
                      " WHERE id = ANY($4::bigint[]) AND ((state IN ('queued', 'retrying')"
                      " AND run_at <= $1) OR (state = 'running' AND lease_until < $1))"
                      " RETURNING id",
                  {Param(now), Param(owner), Param(until), pg::ArrayLiteral(list)});
  }
  if (!r.ok()) return r.status();
  std::vector<Param> claimed;
  for (int i = 0; i < r->size(); ++i) claimed.emplace_back(r->Int(i, 0));
  if (claimed.empty()) return std::vector<Job>();
  return QueryJobs("WHERE id = ANY($1::bigint[]) ORDER BY id", {pg::ArrayLiteral(claimed)});
}

Result<Job> PgStore::ReserveWaitingJob(int64_t id) {
  Result<pg::Rows> r = Status::Ok();
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    r = WriteExec("UPDATE " + T("jobs") +
                      " SET lease_epoch = lease_epoch + 1 WHERE id = $1"
                      " AND state IN ('queued', 'retrying') RETURNING id",
                  {Param(id)});
  }
  if (!r.ok()) return r.status();
  auto job = GetJob(id);
  if (!job.ok() || r->size() > 0) return job;
  return NotWaiting(*job);
}

Result<std::vector<int64_t>> PgStore::ExtendClaims(
    const std::vector<std::pair<int64_t, int64_t>>& claims, int64_t until) {
  std::vector<Param> ids, epochs;
  for (const auto& [id, epoch] : claims) {
    ids.emplace_back(id);
    epochs.emplace_back(epoch);
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  auto r = WriteExec("WITH held AS (UPDATE " + T("jobs") +
                         " AS j SET lease_until = $1 FROM unnest($2::bigint[], $3::bigint[])"
                         " AS c(id, epoch) WHERE j.id = c.id AND j.lease_epoch = c.epoch"
                         " AND j.state = 'running' RETURNING j.id)"
                         " SELECT c.id FROM unnest($2::bigint[]) AS c(id)"
                         " WHERE c.id NOT IN (SELECT id FROM held) ORDER BY c.id",
                     {Param(until), pg::ArrayLiteral(ids), pg::ArrayLiteral(epochs)});
  if (!r.ok()) return r.status();
  std::vector<int64_t> lost;
  for (int i = 0; i < r->size(); ++i) lost.push_back(r->Int(i, 0));
  return lost;
}

Result<std::vector<int64_t>> PgStore::AdoptJobs(const std::vector<int64_t>& ids,
                                                const std::string& from, const std::string& to) {
  std::vector<Param> list;
  for (int64_t id : ids) list.emplace_back(id);
  std::lock_guard<std::mutex> lock(write_mu_);
  auto r = WriteExec("UPDATE " + T("jobs") +
                         " SET lease_owner = $1 WHERE id = ANY($2::bigint[])"
                         " AND COALESCE(lease_owner, '') = $3"
                         " AND state NOT IN ('succeeded', 'failed', 'cancelled') RETURNING id",
                     {Param(to), pg::ArrayLiteral(list), Param(from)});
  if (!r.ok()) return r.status();
  std::vector<int64_t> moved;
  for (int i = 0; i < r->size(); ++i) moved.push_back(r->Int(i, 0));
  std::sort(moved.begin(), moved.end());
  return moved;
}

Result<std::optional<int64_t>> PgStore::TakeLease(const std::string& name, const std::string& owner,
                                                  int64_t until, int64_t now) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto r = WriteExec("INSERT INTO " + T("leases") +
                         " AS l (name, owner, epoch, until) VALUES ($1, $2, 1, $3)"
                         " ON CONFLICT (name) DO UPDATE SET"
                         " epoch = CASE WHEN l.owner = EXCLUDED.owner THEN l.epoch"
                         " ELSE l.epoch + 1 END, owner = EXCLUDED.owner, until = EXCLUDED.until"
                         " WHERE l.owner = EXCLUDED.owner OR l.until < $4 RETURNING epoch",
                     {Param(name), Param(owner), Param(until), Param(now)});
  if (!r.ok()) return r.status();
  if (r->size() == 0) return std::optional<int64_t>();
  return std::optional<int64_t>(r->Int(0, 0));
}

Status PgStore::ReleaseLease(const std::string& name, const std::string& owner, int64_t epoch) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return WriteExec("UPDATE " + T("leases") +
                       " SET until = 0 WHERE name = $1 AND owner = $2 AND epoch = $3",
                   {Param(name), Param(owner), Param(epoch)})
      .status();
}

Result<std::vector<Lease>> PgStore::ListLeases() {
  auto r = Read("SELECT name, owner, epoch, until FROM " + T("leases") + " ORDER BY name", {});
  if (!r.ok()) return r.status();
  std::vector<Lease> out;
  for (int i = 0; i < r->size(); ++i) {
    out.push_back({r->Text(i, 0), r->Text(i, 1), r->Int(i, 2), r->Int(i, 3)});
  }
  return out;
}

Result<int64_t> PgStore::PruneLeases(const std::string& prefix, int64_t ended_before) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto r =
      WriteExec("DELETE FROM " + T("leases") + " WHERE left(name, length($1)) = $1 AND until < $2",
                {Param(prefix), Param(ended_before)});
  if (!r.ok()) return r.status();
  return r->Affected();
}

}  // namespace sluice
