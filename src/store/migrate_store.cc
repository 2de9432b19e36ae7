// sluice migrate-store: SQLite → PostgreSQL, in resumable chunks.
#include "store/migrate_store.h"

#include <rapidjson/document.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <set>

#include "core/json.h"
#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_store.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"

namespace sluice {
namespace {

constexpr const char* kProgressNs = "migrate-store";

struct Column {
  const char* name;
  const char* pg_type;  // of the array it travels in
};

struct CopySpec {
  const char* table;
  std::vector<const char*> key;
  std::vector<Column> columns;
};

const std::vector<CopySpec>& Specs() {
  static const std::vector<CopySpec> kSpecs = {
      {"jobs",
       {"id"},
       {{"id", "bigint"},
        {"queue", "text"},
        {"kind", "text"},
        {"spool", "text"},
        {"name", "text"},
        {"file_dev", "bigint"},
        {"file_ino", "bigint"},
        {"file_size", "bigint"},
        {"file_mtime_ns", "bigint"},
        {"state", "text"},
        {"priority", "integer"},
        {"attempts", "integer"},
        {"interruptions", "integer"},
        {"max_attempts", "integer"},
        {"run_at", "bigint"},
        {"created_at", "bigint"},
        {"last_tried", "bigint"},
        {"finished_at", "bigint"},
        {"error_code", "text"},
        {"error_message", "text"},
        {"error_detail", "text"},
        {"result", "text"},
        {"payload", "text"},
        {"idempotency_key", "text"},
        {"lease_epoch", "bigint"},
        {"retried_at", "bigint"}}},
      {"events",
       {"id"},
       {{"id", "bigint"},
        {"ts", "bigint"},
        {"job_id", "bigint"},
        {"queue", "text"},
        {"kind", "text"},
        {"type", "text"},
        {"data", "text"}}},
      {"tasks",
       {"seq"},
       {{"seq", "bigint"},
        {"task_id", "text"},
        {"backend", "text"},
        {"category", "text"},
        {"backend_args", "text"},
        {"archive", "text"},
        {"fetch_from_archive", "integer"},
        {"delay_s", "bigint"},
        {"max_retries", "integer"},
        {"max_age", "integer"},
        {"queue", "text"},
        {"status", "text"},
        {"age", "integer"},
        {"num_failures", "integer"},
        {"created_on", "bigint"},
        {"next_run_at", "bigint"},
        {"next_from_date", "text"},
        {"next_offset", "bigint"},
        {"current_job", "text"},
        {"scheduler_given", "integer"}}},
      {"task_runs",
       {"job_id"},
       {{"job_id", "text"},
        {"task_seq", "bigint"},
        {"task_id", "text"},
        {"job_number", "integer"},
        {"queue", "text"},
        {"status", "text"},
        {"created_at", "bigint"},
        {"started_at", "bigint"},
        {"ended_at", "bigint"},
        {"lease_until", "bigint"},
        {"args", "text"},
        {"result", "text"},
        {"error", "text"},
        {"log", "text"}}},
      {"items",
       {"seq"},
       {{"seq", "bigint"},
        {"task_seq", "bigint"},
        {"task_id", "text"},
        {"uuid", "text"},
        {"updated_on", "bigint"},
        {"data", "text"}}},
      {"kv", {"ns", "key"}, {{"ns", "text"}, {"key", "text"}, {"value", "text"}}},
  };
  return kSpecs;
}

std::string JsonArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + JsonQuote(items[i]);
  return out + "]";
}

std::vector<std::string> FromJsonArray(const std::string& text) {
  std::vector<std::string> out;
  rapidjson::Document d;
  if (!ParseJson(text, &d).ok() || !d.IsArray()) return out;
  for (auto& v : d.GetArray()) {
    if (v.IsString()) out.push_back(JsonStr(v));
  }
  return out;
}

Result<bool> SqliteHasTable(sqlite::Db& db, const std::string& table) {
  auto s =
      sqlite::Stmt::Prepare(db.get(), "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?");
  if (!s.ok()) return s.status();
  s->Bind(1, table);
  return s->Step();
}

Result<int64_t> SqliteCount(sqlite::Db& db, const std::string& table) {
  auto s = sqlite::Stmt::Prepare(db.get(), "SELECT COUNT(*) FROM \"" + table + "\"");
  if (!s.ok()) return s.status();
  auto row = s->Step();
  if (!row.ok()) return row.status();
  return s->Int(0);
}

Result<int64_t> PgCount(pg::Conn& c, const std::string& qualified, const std::string& where = "") {
  auto r = c.Exec("SELECT COUNT(*) FROM " + qualified + where);
  if (!r.ok()) return r.status();
  return r->Int(0, 0);
}

class Copier {
 public:
  Copier(const MigrateStoreOptions& o, sqlite::Db* src, pg::Conn* dst, PgStore* store,
         const std::function<void(const std::string&)>& progress)
      : o_(o), src_(src), dst_(dst), store_(store), progress_(progress) {}

  Status CopyTable(const CopySpec& spec);
  Status CopyObjects(int table, const TableSpec& spec);

 private:
  void Say(const std::string& table, int64_t done, int64_t total, bool last) {
    auto now = std::chrono::steady_clock::now();
    if (!last && now - said_ < std::chrono::seconds(1)) return;
    said_ = now;
    progress_(table + ": " + std::to_string(done) + " of " + std::to_string(total) +
              (last ? " copied" : ""));
  }

  const MigrateStoreOptions& o_;
  sqlite::Db* src_;
  pg::Conn* dst_;
  PgStore* store_;
  const std::function<void(const std::string&)>& progress_;
  std::chrono::steady_clock::time_point said_{};
};

Status Copier::CopyTable(const CopySpec& spec) {
  auto has = SqliteHasTable(*src_, spec.table);
  if (!has.ok()) return has.status();
  if (!*has) return Status::Ok();
  auto total = SqliteCount(*src_, spec.table);
  if (!total.ok()) return total.status();
  std::string cols, keys, marks;
  for (const Column& c : spec.columns) cols += (cols.empty() ? "" : ", ") + std::string(c.name);
  for (const char* k : spec.key) {
    keys += (keys.empty() ? "" : ", ") + std::string(k);
    marks += marks.empty() ? "?" : ", ?";
  }
  std::string insert =
      "INSERT INTO " + store_->T(spec.table) + " (" + cols + ") SELECT * FROM unnest(";
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    insert += (i ? ", $" : "$") + std::to_string(i + 1) + "::" + spec.columns[i].pg_type + "[]";
  }
  insert += ") ON CONFLICT DO NOTHING";
  std::string mark = "INSERT INTO " + store_->T("kv") + " (ns, key, value) VALUES ('" +
                     kProgressNs +
                     "', $1, $2)"
                     " ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value";
  auto resume = store_->GetValue(kProgressNs, spec.table);
  if (!resume.ok()) return resume.status();
  std::vector<std::string> after =
      resume->has_value() ? FromJsonArray(**resume) : std::vector<std::string>();
  int64_t done = 0;
  if (!after.empty()) {
    // What was copied before the interruption counts as done.
    auto s = sqlite::Stmt::Prepare(src_->get(), "SELECT COUNT(*) FROM " + std::string(spec.table) +
                                                    " WHERE (" + keys + ") <= (" + marks + ")");
    if (!s.ok()) return s.status();
    for (size_t i = 0; i < after.size(); ++i) s->Bind(static_cast<int>(i + 1), after[i]);
    auto row = s->Step();
    if (!row.ok()) return row.status();
    done = s->Int(0);
    progress_(std::string(spec.table) + ": resuming after " + std::to_string(done));
  }
  while (true) {
    std::string sql = "SELECT " + cols + " FROM " + spec.table;
    if (!after.empty()) sql += " WHERE (" + keys + ") > (" + marks + ")";
    sql += " ORDER BY " + keys + " LIMIT " + std::to_string(o_.chunk);
    auto s = sqlite::Stmt::Prepare(src_->get(), sql);
    if (!s.ok()) return s.status();
    for (size_t i = 0; i < after.size(); ++i) s->Bind(static_cast<int>(i + 1), after[i]);
    std::vector<std::vector<pg::Param>> arrays(spec.columns.size());
    std::vector<std::string> last;
    int n = 0;
    while (true) {
      auto row = s->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      for (size_t c = 0; c < spec.columns.size(); ++c) {
        int col = static_cast<int>(c);
        arrays[c].push_back(s->IsNull(col) ? pg::Param() : pg::Param(s->Text(col)));
      }
      last.clear();
      for (size_t k = 0; k < spec.key.size(); ++k) last.push_back(s->Text(static_cast<int>(k)));
      ++n;
    }
    if (n == 0) break;
    // The key columns come first in every spec, so `last` holds the chunk's last key.
    pg::Query q{insert, {}};
    for (const auto& a : arrays) q.params.emplace_back(pg::ArrayLiteral(a));
    std::vector<pg::Query> queries = {std::move(q),
                                      pg::Query{mark, {pg::Param(spec.table), JsonArray(last)}}};
    std::vector<pg::Rows> results;
    size_t failed = 0;
    Status st = dst_->Pipeline(queries, &results, &failed);
    if (!st.ok()) return st.Annotate(std::string("copying ") + spec.table);
    done += n;
    after = last;
    Say(spec.table, done, *total, false);
  }
  Say(spec.table, done, *total, true);
  return Status::Ok();
}

Status Copier::CopyObjects(int table, const TableSpec& spec) {
  auto has = SqliteHasTable(*src_, spec.name);
  if (!has.ok()) return has.status();
  if (!*has) return Status::Ok();
  auto total = SqliteCount(*src_, spec.name);
  if (!total.ok()) return total.status();
  // The source's columns (an older one may lack some: NULL).
  auto info = sqlite::Stmt::Prepare(src_->get(), "PRAGMA table_info(\"" + spec.name + "\")");
  if (!info.ok()) return info.status();
  std::set<std::string> present;
  while (true) {
    auto row = info->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    present.insert(info->Text(1));
  }
  std::string cols, key;
  for (const ColumnSpec& c : spec.columns) {
    cols += (cols.empty() ? "" : ", ") + (present.count(c.name) ? "\"" + c.name + "\"" : "NULL");
    if (c.merge == MergeRule::kKey) key = "\"" + c.name + "\"";
  }
  auto resume = store_->GetValue(kProgressNs, spec.name);
  if (!resume.ok()) return resume.status();
  std::string after = resume->has_value() ? **resume : "";
  int64_t done = 0;
  while (true) {
    auto s = sqlite::Stmt::Prepare(src_->get(), "SELECT " + cols + " FROM \"" + spec.name +
                                                    "\" WHERE " + key + " > ? ORDER BY " + key +
                                                    " LIMIT " + std::to_string(o_.chunk));
    if (!s.ok()) return s.status();
    s->Bind(1, after);
    std::string last;
    auto rows = ReadObjectRows(&*s, table, spec, &last);
    if (!rows.ok()) return rows.status();
    if (rows->empty()) break;
    SLUICE_RETURN_IF_ERROR(store_->ImportRows(*rows).Annotate("copying " + spec.name));
    SLUICE_RETURN_IF_ERROR(store_->PutValue(kProgressNs, spec.name, last));
    done += static_cast<int64_t>(rows->size());
    after = last;
    Say(spec.name, done, *total, false);
  }
  Say(spec.name, done, *total, true);
  return Status::Ok();
}

}  // namespace

Result<std::vector<TableCount>> MigrateStore(
    const MigrateStoreOptions& o, const std::function<void(const std::string&)>& progress) {
  if (o.from.rfind("sqlite:", 0) != 0) {
    return Status::InvalidArgument("--from must be sqlite:PATH");
  }
  if (!IsPostgresUrl(o.to)) return Status::InvalidArgument("--to must be a PostgreSQL database");
  std::string path = o.from.substr(7);
  std::error_code ec;
  if (path.empty() || !std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound("no SQLite database " + path);
  }
  std::string source = std::filesystem::canonical(path, ec).string();
  // The source at this binary's layout first, as every command that opens a database does:
  // the copy reads the latest columns.
  auto layout = MigrateSchema(o.from);
  if (!layout.ok()) return layout.status();
  auto src = sqlite::Db::Open(path);
  if (!src.ok()) return src.status();
  auto store = PgStore::Open(o.to, o.to_options);  // creates or updates Sluice's schema
  if (!store.ok()) return store.status();
  if (!o.object_tables.empty()) SLUICE_RETURN_IF_ERROR((*store)->DefineTables(o.object_tables));
  auto dst = pg::Conn::Connect(o.to);
  if (!dst.ok()) return dst.status();
  PgStore& s = **store;

  // A target with data of its own needs --append; one that holds a copy of this source in
  // progress is resumed.
  auto marker = s.GetValue(kProgressNs, "source");
  if (!marker.ok()) return marker.status();
  bool resuming = marker->has_value() && **marker == source;
  if (!resuming && !o.append) {
    std::string held;
    for (const CopySpec& spec : Specs()) {
      auto n = PgCount(*dst, s.T(spec.table),
                       std::string(spec.table) == "kv" ? " WHERE ns <> 'migrate-store'" : "");
      if (!n.ok()) return n.status();
      if (*n > 0) held += (held.empty() ? "" : ", ") + std::to_string(*n) + " " + spec.table;
    }
    for (const TableSpec& t : o.object_tables) {
      auto n = s.CountRows(t.name);
      if (n.ok() && *n > 0) held += (held.empty() ? "" : ", ") + std::to_string(*n) + " " + t.name;
    }
    if (!held.empty()) {
      return Status::FailedPrecondition("the target already holds data (" + held +
                                        "): give --append to add to it");
    }
  }
  if (!resuming) SLUICE_RETURN_IF_ERROR(s.PutValue(kProgressNs, "source", source));
  if (resuming) progress("resuming the copy of " + source);

  Copier copier(o, &*src, &*dst, &s, progress);
  for (const CopySpec& spec : Specs()) SLUICE_RETURN_IF_ERROR(copier.CopyTable(spec));
  for (size_t i = 0; i < o.object_tables.size(); ++i) {
    SLUICE_RETURN_IF_ERROR(copier.CopyObjects(static_cast<int>(i), o.object_tables[i]));
  }
  // Ids to come start above the copied ones; tasks and items number on after theirs.
  std::string fix = "UPDATE " + s.T("counters") +
                    " SET value = GREATEST(value, (SELECT COALESCE(MAX(id), 0) FROM " +
                    s.T("jobs") + ")) WHERE name = 'jobs'; UPDATE " + s.T("counters") +
                    " SET value = GREATEST(value, (SELECT COALESCE(MAX(id), 0) FROM " +
                    s.T("events") + ")) WHERE name = 'events';";
  for (const char* t : {"tasks", "items"}) {
    std::string seq = "pg_get_serial_sequence('" + s.T(t) + "', 'seq')";
    fix += " SELECT setval(" + seq + ", GREATEST((SELECT COALESCE(MAX(seq), 0) FROM " + s.T(t) +
           "), 1), (SELECT COUNT(*) > 0 FROM " + s.T(t) + "));";
  }
  SLUICE_RETURN_IF_ERROR(dst->Script(fix));

  std::vector<TableCount> counts;
  for (const CopySpec& spec : Specs()) {
    auto has = SqliteHasTable(*src, spec.table);
    if (!has.ok()) return has.status();
    TableCount c{spec.table, 0, 0};
    if (*has) {
      auto n = SqliteCount(*src, spec.table);
      if (!n.ok()) return n.status();
      c.source = *n;
    }
    auto t = PgCount(*dst, s.T(spec.table),
                     std::string(spec.table) == "kv" ? " WHERE ns <> 'migrate-store'" : "");
    if (!t.ok()) return t.status();
    c.target = *t;
    counts.push_back(c);
  }
  for (const TableSpec& t : o.object_tables) {
    auto has = SqliteHasTable(*src, t.name);
    if (!has.ok() || !*has) continue;
    TableCount c{t.name, 0, 0};
    auto n = SqliteCount(*src, t.name);
    if (!n.ok()) return n.status();
    c.source = *n;
    auto m = s.CountRows(t.name);
    if (!m.ok()) return m.status();
    c.target = *m;
    counts.push_back(c);
  }
  return counts;
}

}  // namespace sluice
