// SqliteStore: fenced claims and role leases (schema version 2). One daemon per database
// file, but the same rules as on PostgreSQL, so the engine has one code path.
#include "store/sqlite/sqlite_store.h"

namespace sluice {

using sqlite::Stmt;

Status SqliteStore::InWriteTransaction(const std::function<Status()>& body) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(write_.Exec("BEGIN IMMEDIATE"));
  Status st = body();
  if (st.ok()) st = write_.Exec("COMMIT");
  if (!st.ok()) (void)write_.Exec("ROLLBACK");
  return st;
}

Result<std::vector<Job>> SqliteStore::ClaimJobs(const std::vector<int64_t>& ids,
                                                const std::string& owner, int64_t until,
                                                int64_t now) {
  std::vector<int64_t> claimed;
  Status st = InWriteTransaction([&]() -> Status {
    auto s = Stmt::Prepare(write_.get(),
                           "UPDATE jobs SET state='running', attempts=attempts+1, last_tried=?1,"
                           " lease_epoch=lease_epoch+1, lease_owner=?2, lease_until=?3"
                           " WHERE id=?4 AND ((state IN ('queued','retrying') AND run_at <= ?1)"
                           " OR (state='running' AND lease_until < ?1)) RETURNING id");
    if (!s.ok()) return s.status();
    for (int64_t id : ids) {
      s->Bind(1, now).Bind(2, owner).Bind(3, until).Bind(4, id);
      auto row = s->Step();
      if (!row.ok()) return row.status();
      if (*row) claimed.push_back(id);
      s->Reset();
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  std::vector<Job> jobs;
  for (int64_t id : claimed) {
    auto j = GetJob(id);
    if (!j.ok()) return j.status();
    jobs.push_back(std::move(*j));
  }
  return jobs;
}

Result<Job> SqliteStore::ReserveWaitingJob(int64_t id) {
  bool reserved = false;
  Status st = InWriteTransaction([&]() -> Status {
    auto s = Stmt::Prepare(write_.get(),
                           "UPDATE jobs SET lease_epoch=lease_epoch+1 WHERE id=?1"
                           " AND state IN ('queued','retrying') RETURNING id");
    if (!s.ok()) return s.status();
    s->Bind(1, id);
    auto row = s->Step();
    if (!row.ok()) return row.status();
    reserved = *row;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  auto job = GetJob(id);
  if (!job.ok() || reserved) return job;
  return NotWaiting(*job);
}

Result<std::vector<int64_t>> SqliteStore::ExtendClaims(
    const std::vector<std::pair<int64_t, int64_t>>& claims, int64_t until) {
  std::vector<int64_t> lost;
  Status st = InWriteTransaction([&]() -> Status {
    auto s = Stmt::Prepare(write_.get(),
                           "UPDATE jobs SET lease_until=?1 WHERE id=?2 AND lease_epoch=?3"
                           " AND state='running' RETURNING id");
    if (!s.ok()) return s.status();
    for (const auto& [id, epoch] : claims) {
      s->Bind(1, until).Bind(2, id).Bind(3, epoch);
      auto row = s->Step();
      if (!row.ok()) return row.status();
      if (!*row) lost.push_back(id);
      s->Reset();
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return lost;
}

Result<std::vector<int64_t>> SqliteStore::AdoptJobs(const std::vector<int64_t>& ids,
                                                    const std::string& from,
                                                    const std::string& to) {
  std::vector<int64_t> moved;
  Status st = InWriteTransaction([&]() -> Status {
    auto s = Stmt::Prepare(write_.get(),
                           "UPDATE jobs SET lease_owner=?1 WHERE id=?2 AND"
                           " COALESCE(lease_owner, '')=?3 AND state NOT IN"
                           " ('succeeded','failed','cancelled') RETURNING id");
    if (!s.ok()) return s.status();
    for (int64_t id : ids) {
      s->Bind(1, to).Bind(2, id).Bind(3, from);
      auto row = s->Step();
      if (!row.ok()) return row.status();
      if (*row) moved.push_back(id);
      s->Reset();
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return moved;
}

Result<std::optional<int64_t>> SqliteStore::TakeLease(const std::string& name,
                                                      const std::string& owner, int64_t until,
                                                      int64_t now) {
  std::optional<int64_t> epoch;
  Status st = InWriteTransaction([&]() -> Status {
    auto s =
        Stmt::Prepare(write_.get(),
                      "INSERT INTO leases (name, owner, epoch, until) VALUES (?1, ?2, 1, ?3)"
                      " ON CONFLICT (name) DO UPDATE SET"
                      " epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch"
                      " ELSE leases.epoch + 1 END, owner = excluded.owner, until = excluded.until"
                      " WHERE leases.owner = excluded.owner OR leases.until < ?4 RETURNING epoch");
    if (!s.ok()) return s.status();
    s->Bind(1, name).Bind(2, owner).Bind(3, until).Bind(4, now);
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (*row) epoch = s->Int(0);
    s->Reset();
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return epoch;
}

Status SqliteStore::ReleaseLease(const std::string& name, const std::string& owner, int64_t epoch) {
  return InWriteTransaction([&]() -> Status {
    auto s = Stmt::Prepare(write_.get(),
                           "UPDATE leases SET until=0 WHERE name=? AND owner=? AND epoch=?");
    if (!s.ok()) return s.status();
    return s->Bind(1, name).Bind(2, owner).Bind(3, epoch).Run();
  });
}

Result<std::vector<Lease>> SqliteStore::ListLeases() {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), "SELECT name, owner, epoch, until FROM leases ORDER BY name");
  if (!s.ok()) return s.status();
  std::vector<Lease> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({s->Text(0), s->Text(1), s->Int(2), s->Int(3)});
  }
  return out;
}

Result<int64_t> SqliteStore::PruneLeases(const std::string& prefix, int64_t ended_before) {
  int64_t gone = 0;
  Status st = InWriteTransaction([&]() -> Status {
    auto s = Stmt::Prepare(write_.get(),
                           "DELETE FROM leases WHERE substr(name, 1, length(?1)) = ?1"
                           " AND until < ?2");
    if (!s.ok()) return s.status();
    SLUICE_RETURN_IF_ERROR(s->Bind(1, prefix).Bind(2, ended_before).Run());
    gone = sqlite3_changes(write_.get());
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return gone;
}

}  // namespace sluice
