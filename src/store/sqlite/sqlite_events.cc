// SqliteStore: the events table (append at commit, replay, retention).
#include "store/sqlite/sqlite_store.h"

namespace sluice {

using sqlite::Stmt;

Status SqliteStore::InsertEvent(Event* e) {
  insert_event_.Bind(1, e->ts)
      .Bind(2, e->job_id)
      .Bind(3, e->queue)
      .Bind(4, e->kind)
      .Bind(5, e->type)
      .Bind(6, e->data);
  Status st = insert_event_.Run();
  if (!st.ok()) return st.Annotate("append event for job " + std::to_string(e->job_id));
  e->id = sqlite3_last_insert_rowid(write_.get());
  return Status::Ok();
}

Result<std::vector<Event>> SqliteStore::ListEvents(const EventFilter& f) {
  std::string sql = "SELECT id, ts, job_id, queue, kind, type, data FROM events WHERE id>?";
  std::vector<Value> args{Value(f.after_id)};
  if (f.job_id != 0) {
    sql += " AND job_id=?";
    args.emplace_back(f.job_id);
  }
  if (f.queue) {
    sql += " AND queue=?";
    args.emplace_back(*f.queue);
  }
  if (f.kind) {
    sql += " AND kind=?";
    args.emplace_back(*f.kind);
  }
  if (!f.types.empty()) {
    sql += " AND type IN (";
    for (size_t i = 0; i < f.types.size(); ++i) {
      sql += i ? ",?" : "?";
      args.emplace_back(f.types[i]);
    }
    sql += ")";
  }
  sql += " ORDER BY id LIMIT " + std::to_string(std::max(1, f.limit));
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s = Stmt::Prepare(read_.get(), sql);
  if (!s.ok()) return s.status();
  for (size_t i = 0; i < args.size(); ++i) s->Bind(static_cast<int>(i + 1), args[i]);
  std::vector<Event> events;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Event e;
    e.id = s->Int(0);
    e.ts = s->Int(1);
    e.job_id = s->Int(2);
    e.queue = s->Text(3);
    e.kind = s->Text(4);
    e.type = s->Text(5);
    e.data = s->Text(6);
    events.push_back(std::move(e));
  }
  return events;
}

Result<std::pair<int64_t, int64_t>> SqliteStore::EventIdRange() {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto s =
      Stmt::Prepare(read_.get(), "SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM events");
  if (!s.ok()) return s.status();
  auto row = s->Step();
  if (!row.ok()) return row.status();
  return std::make_pair(s->Int(0), s->Int(1));
}

Result<int64_t> SqliteStore::PruneEvents(const EventRetention& retention, int64_t now) {
  std::lock_guard<std::mutex> lock(write_mu_);
  // Events are appended in time order, so "too old" is an id prefix too: everything below
  // the first event young enough, and below the newest max_count.
  auto s = Stmt::Prepare(
      write_.get(),
      "SELECT COALESCE((SELECT id FROM events WHERE ts >= ? ORDER BY id LIMIT 1),"
      " (SELECT MAX(id) + 1 FROM events), 0), COALESCE((SELECT MAX(id) FROM events), 0)");
  if (!s.ok()) return s.status();
  s->Bind(1, now - retention.max_age_s * 1'000'000);
  auto row = s->Step();
  if (!row.ok()) return row.status();
  int64_t cut = std::max(s->Int(0), s->Int(1) - retention.max_count + 1);
  s->Reset();
  auto del = Stmt::Prepare(write_.get(), "DELETE FROM events WHERE id < ?");
  if (!del.ok()) return del.status();
  SLUICE_RETURN_IF_ERROR(del->Bind(1, cut).Run());
  return static_cast<int64_t>(sqlite3_changes(write_.get()));
}

}  // namespace sluice
