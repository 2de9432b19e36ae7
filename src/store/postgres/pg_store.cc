// PgStore: connections and outages, object tables, the group-commit Write.
#include "store/postgres/pg_store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>

#include "core/spdlog.h"
#include "core/text.h"
#include "store/postgres/pg_schema.h"

namespace sluice {

using pg::Param;
using pg::Query;

namespace {

constexpr auto kReconnectEvery = std::chrono::milliseconds(500);
// The owner mark of the statement that takes the event ids (it returns the first).
constexpr int64_t kTakesEventIds = -1;
constexpr int64_t kFence = -2;  // the statement that checks lease epochs
constexpr int64_t kHold = -3;   // the statement that checks the role leases
constexpr std::string_view kStale = "stale lease epochs for jobs: ";

// Text PostgreSQL can hold: valid UTF-8 without NUL (others become U+FFFD). Sluice's own
// columns only; object rows with such values are refused instead (CheckRow).
Param PgText(const std::string& s) {
  bool fine = s.find('\0') == std::string::npos && IsValidUtf8(s);
  if (fine) return Param(s);
  std::string v = ValidUtf8(s);
  std::string out;
  for (char c : v) {
    if (c == '\0') {
      out += "\xEF\xBF\xBD";
    } else {
      out += c;
    }
  }
  return Param(out);
}

Param PgTextOrNull(const std::string& s) { return s.empty() ? Param() : PgText(s); }

std::string NewToken() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

// UTF-8 characters in `s` (PostgreSQL counts varchar(n) in characters).
size_t Chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string ObjectKey(const TableSpec& spec, const ObjectRow& row) {
  for (size_t i = 0; i < spec.columns.size() && i < row.values.size(); ++i) {
    if (spec.columns[i].merge == MergeRule::kKey && row.values[i].index() == 3) {
      return std::get<std::string>(row.values[i]);
    }
  }
  return "?";
}

const char* GenericType(ColumnType t) {
  switch (t) {
    case ColumnType::kInteger:
      return "bigint";
    case ColumnType::kReal:
      return "double precision";
    case ColumnType::kText:
      return "text";
  }
  return "text";
}

}  // namespace

std::string PgStore::T(std::string_view table) const {
  return schema_q_ + "." + std::string(table);
}

PgStore::PgStore(std::string conninfo, StoreOptions options)
    : conninfo_(std::move(conninfo)),
      options_(std::move(options)),
      schema_q_(pg::QuoteIdent(options_.pg_schema)) {}

Result<std::unique_ptr<PgStore>> PgStore::Open(const std::string& conninfo,
                                               const StoreOptions& options) {
  std::unique_ptr<PgStore> s(new PgStore(conninfo, options));
  SLUICE_RETURN_IF_ERROR(s->Init());
  return s;
}

Result<SchemaReport> PgStore::Check(const std::string& conninfo, const StoreOptions& options) {
  auto c = pg::Conn::Connect(conninfo);
  if (!c.ok()) return c.status();
  return pg::CheckSchema(*c, options.pg_schema);
}

Status PgStore::Init() {
  if (options_.pg_schema.empty()) return Status::InvalidArgument("--pg-schema is empty");
  auto w = pg::Conn::Connect(conninfo_);
  if (!w.ok()) return w.status();
  write_ = std::move(*w);
  server_ = write_.server();
  write_tried_ = std::chrono::steady_clock::now();
  SLUICE_RETURN_IF_ERROR(pg::Migrate(write_, options_.pg_schema, pg::StoreMigrations(), &schema_));
  for (const std::string& m : schema_.applied) {
    spdlog::info("PostgreSQL {} schema {}: applied {}", server_, schema_q_, m);
  }
  auto r = pg::Conn::Connect(conninfo_);
  if (!r.ok()) return r.status();
  read_ = std::move(*r);
  read_tried_ = write_tried_;
  return Status::Ok();
}

void PgStore::Outage(const Status& why) {
  std::lock_guard<std::mutex> lock(outage_mu_);
  if (outage_.exchange(true)) return;
  outage_since_ = std::chrono::steady_clock::now();
  spdlog::warn("PostgreSQL {} is unreachable ({}); waiting for it, work resumes when it is back",
               server_, why.message());
}

void PgStore::Back() {
  if (!outage_.load()) return;
  std::lock_guard<std::mutex> lock(outage_mu_);
  if (!outage_.exchange(false)) return;
  double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - outage_since_).count();
  spdlog::info("PostgreSQL {} is back after {:.1f} s", server_, s);
}

std::chrono::steady_clock::time_point& PgStore::TriedAt(pg::Conn* conn) {
  return conn == &write_ ? write_tried_ : conn == &read_ ? read_tried_ : listen_tried_;
}

Status PgStore::Note(const Status& st, pg::Conn* conn) {
  if (st.ok()) {
    Back();
    return st;
  }
  if (st.code() != Code::kUnavailable || !conn->Broken() || outage_.load()) return st;
  // The connection was lost: a server restarted since it was last used is not an outage if
  // a new connection works at once (the caller retries the call).
  TriedAt(conn) = std::chrono::steady_clock::now();
  auto c = pg::Conn::Connect(conninfo_);
  if (c.ok()) {
    *conn = std::move(*c);
  } else {
    Outage(c.status());
  }
  return st;
}

Status PgStore::Ensure(pg::Conn* conn) {
  if (!conn->Broken()) return Status::Ok();
  auto& tried = TriedAt(conn);
  auto now = std::chrono::steady_clock::now();
  if (outage_.load() && now - tried < kReconnectEvery) {
    // In an outage and tried a moment ago: not another attempt yet.
    return Status::Unavailable("PostgreSQL " + server_ + " cannot be reached");
  }
  tried = now;
  auto c = pg::Conn::Connect(conninfo_);
  if (!c.ok()) {
    Outage(c.status());
    return c.status();
  }
  *conn = std::move(*c);
  Back();
  return Status::Ok();
}

Result<pg::Rows> PgStore::Read(const std::string& sql, const std::vector<Param>& params) {
  std::lock_guard<std::mutex> lock(read_mu_);
  for (int attempt = 0;; ++attempt) {
    SLUICE_RETURN_IF_ERROR(Ensure(&read_));
    auto rows = read_.Exec(sql, params);
    if (rows.ok()) {
      Back();
      return rows;
    }
    // A connection lost since its last use (a server restart): once more on a new one.
    if (attempt == 0 && read_.Broken()) {
      read_tried_ = {};
      continue;
    }
    return Note(rows.status(), &read_);
  }
}

Result<pg::Rows> PgStore::WriteExec(const std::string& sql, const std::vector<Param>& params) {
  SLUICE_RETURN_IF_ERROR(Ensure(&write_));
  auto rows = write_.Exec(sql, params);
  if (!rows.ok()) return Note(rows.status(), &write_);
  return rows;
}

Status PgStore::DefineTables(const std::vector<TableSpec>& tables) {
  std::lock_guard<std::mutex> lock(write_mu_);
  if (tables.empty()) return Status::Ok();
  if (!tables_.empty()) {
    bool same = tables.size() == tables_.size();
    for (size_t i = 0; same && i < tables.size(); ++i)
      same = tables[i].name == tables_[i].spec.name;
    if (!same) {
      return Status::InvalidArgument(
          "spools whose handlers store different object tables cannot share a database");
    }
  }
  SLUICE_RETURN_IF_ERROR(Ensure(&write_));
  // Processes starting together on a fresh database (a cluster) must not both create the
  // tables: the second waits here, then finds them made.
  auto locked = write_.Exec("SELECT pg_advisory_lock(hashtext('sluice: object tables'))", {});
  if (!locked.ok()) return locked.status();
  Status st = DefineTablesLocked(tables);
  auto unlocked = write_.Exec("SELECT pg_advisory_unlock(hashtext('sluice: object tables'))", {});
  if (st.ok() && !unlocked.ok()) st = unlocked.status();
  return st;
}

Status PgStore::DefineTablesLocked(const std::vector<TableSpec>& tables) {
  std::set<std::string> ran_ddl;
  std::vector<Table> defined;
  for (const TableSpec& spec : tables) {
    auto exists = write_.Exec("SELECT to_regclass($1) IS NOT NULL", {pg::QuoteIdent(spec.name)});
    if (!exists.ok()) return exists.status();
    if (exists->Text(0, 0) != "t") {
      if (!spec.postgres_ddl.empty()) {
        if (!ran_ddl.count(spec.postgres_ddl)) {
          SLUICE_RETURN_IF_ERROR(
              write_.Script(spec.postgres_ddl).Annotate("creating " + spec.name));
          ran_ddl.insert(spec.postgres_ddl);
        }
      } else {
        std::string ddl = "CREATE TABLE IF NOT EXISTS " + pg::QuoteIdent(spec.name) + " (";
        for (size_t i = 0; i < spec.columns.size(); ++i) {
          const ColumnSpec& c = spec.columns[i];
          ddl += (i ? ", " : "") + pg::QuoteIdent(c.name) + " " + GenericType(c.type);
          if (c.merge == MergeRule::kKey) ddl += " PRIMARY KEY";
        }
        SLUICE_RETURN_IF_ERROR(write_.Script(ddl + ")").Annotate("creating " + spec.name));
      }
    }
    Table t;
    SLUICE_RETURN_IF_ERROR(DefineTable(spec, &t));
    defined.push_back(std::move(t));
  }
  tables_ = std::move(defined);
  return Status::Ok();
}

Status PgStore::DefineTable(const TableSpec& spec, Table* t) {
  t->spec = spec;
  t->qualified = pg::QuoteIdent(spec.name);
  auto cols = write_.Exec(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '' "
      "FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
      "AND NOT a.attisdropped",
      {t->qualified});
  if (!cols.ok()) return cols.status();
  std::map<std::string, std::pair<std::string, bool>> have;  // name -> (type, generated)
  for (int r = 0; r < cols->size(); ++r) {
    have[cols->Text(r, 0)] = {cols->Text(r, 1), cols->Text(r, 2) == "t"};
  }
  // A table of our own making gets the columns a newer spec brings; one with DDL of its own
  // (the dashboard's) is written as it is.
  if (spec.postgres_ddl.empty()) {
    for (const ColumnSpec& c : spec.columns) {
      if (have.count(c.name)) continue;
      std::string type = GenericType(c.type);
      SLUICE_RETURN_IF_ERROR(write_.Script("ALTER TABLE " + t->qualified + " ADD COLUMN " +
                                           pg::QuoteIdent(c.name) + " " + type));
      have[c.name] = {type, false};
    }
  }
  std::string names, params, sets, key;
  int key_index = -1;
  int n = 0;
  std::vector<std::string> skipped;
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    const ColumnSpec& c = spec.columns[i];
    auto it = have.find(c.name);
    if (it == have.end() || it->second.second) {
      skipped.push_back(c.name);
      continue;
    }
    Column col;
    col.spec = static_cast<int>(i);
    col.name = c.name;
    col.type = it->second.first;
    if (col.type.rfind("character varying(", 0) == 0) {
      col.max_chars = std::atoi(col.type.c_str() + std::strlen("character varying("));
    }
    t->columns.push_back(col);
    std::string p = "$" + std::to_string(++n);
    std::string q = pg::QuoteIdent(c.name);
    names += (names.empty() ? "" : ", ") + q;
    std::string value;
    if (col.type.size() > 2 && col.type.compare(col.type.size() - 2, 2, "[]") == 0) {
      // Arrays arrive as JSON text: ["a","b"] becomes {a,b}.
      value = "CASE WHEN " + p +
              "::text IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(" + p +
              "::text::jsonb))::" + col.type + " END";
    } else {
      value = p + "::" + col.type;
    }
    params += (params.empty() ? "" : ", ") + value;
    if (c.merge == MergeRule::kKey) {
      key = q;
      key_index = static_cast<int>(i);
      continue;
    }
    if (!sets.empty()) sets += ", ";
    if (c.merge == MergeRule::kFirstNonNull) {
      sets += q + " = COALESCE(cur." + q + ", EXCLUDED." + q + ")";
    } else {
      sets += q + " = GREATEST(cur." + q + ", EXCLUDED." + q + ")";
    }
  }
  if (key.empty()) return Status::InvalidArgument("table " + spec.name + " has no key column");
  if (!skipped.empty()) {
    std::string list;
    for (const std::string& s : skipped) list += (list.empty() ? "" : ", ") + s;
    spdlog::warn("table {} has no (writable) column {}: those values are not stored", spec.name,
                 list);
  }
  t->upsert = "INSERT INTO " + t->qualified + " AS cur (" + names + ") VALUES (" + params +
              ") ON CONFLICT (" + key + ") DO " + (sets.empty() ? "NOTHING" : "UPDATE SET " + sets);
  t->upsert_name = "upsert_" + std::to_string(std::hash<std::string>{}(t->upsert));
  // A table made elsewhere that cannot take the upsert (no unique key on the id, a column of
  // a type the value cannot be cast to) is said now, not by failing every file.
  auto unique = write_.Exec(
      "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
      " AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass($1) AND i.indisunique"
      " AND i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = $2",
      {t->qualified, spec.columns[static_cast<size_t>(key_index)].name});
  if (!unique.ok()) return unique.status();
  if (unique->size() == 0) {
    return Status::FailedPrecondition("table " + spec.name + " has no unique key on " + key +
                                      ": Sluice merges rows by it (the dashboard's tables have it "
                                      "as their primary key)");
  }
  Status st = write_.Prepare(t->upsert_name, t->upsert);
  if (!st.ok()) return st.Annotate("table " + spec.name + " cannot take Sluice's rows");
  return Status::Ok();
}

Status PgStore::CheckRow(int64_t job, const Table& t, const ObjectRow& row) const {
  for (const Column& c : t.columns) {
    const Value& v = row.values[static_cast<size_t>(c.spec)];
    if (v.index() != 3) continue;
    const std::string& s = std::get<std::string>(v);
    auto where = [&]() {
      return "job " + std::to_string(job) + ": " + t.spec.name + " '" +
             PrintableLine(ObjectKey(t.spec, row)) + "': " + c.name;
    };
    if (s.find('\0') != std::string::npos) {
      return Status::InvalidArgument(where() +
                                     " holds a NUL character, which PostgreSQL "
                                     "text cannot hold");
    }
    if (!IsValidUtf8(s)) return Status::InvalidArgument(where() + " is not valid UTF-8");
    if (c.max_chars > 0 && Chars(s) > static_cast<size_t>(c.max_chars)) {
      return Status::InvalidArgument(where() + " is " + std::to_string(Chars(s)) +
                                     " characters long, over the column's limit of " +
                                     std::to_string(c.max_chars) + " (" + c.type + ")");
    }
  }
  return Status::Ok();
}

Status PgStore::BuildWrite(const WriteBatch& batch, std::vector<Query>* queries,
                           std::vector<Owner>* owners) const {
  auto add = [&](Query q, int64_t owner, const ObjectRow* row = nullptr) {
    queries->push_back(std::move(q));
    owners->push_back(Owner{owner, row});
  };
  if (!batch.holds.empty()) {
    std::vector<Param> names, epochs;
    for (const auto& [name, epoch] : batch.holds) {
      names.emplace_back(name);
      epochs.emplace_back(epoch);
    }
    add(Query{"SELECT " + T("hold") + "($1::text[], $2, $3::bigint[])",
              {pg::ArrayLiteral(names), Param(batch.holder), pg::ArrayLiteral(epochs)}},
        kHold);
  }
  // Fenced updates first: fence() locks their jobs and fails the whole transaction when an
  // epoch moved on (Write then drops those updates and writes the rest).
  std::vector<std::pair<int64_t, int64_t>> fenced;
  for (const JobUpdate& u : batch.updates) {
    if (u.epoch > 0) fenced.emplace_back(u.job_id, u.epoch);
  }
  if (!fenced.empty()) {
    std::sort(fenced.begin(), fenced.end());
    std::vector<Param> ids, epochs;
    for (const auto& [id, epoch] : fenced) {
      ids.emplace_back(id);
      epochs.emplace_back(epoch);
    }
    add(Query{"SELECT " + T("fence") + "($1::bigint[], $2::bigint[])",
              {pg::ArrayLiteral(ids), pg::ArrayLiteral(epochs)}},
        kFence);
  }
  if (!batch.new_jobs.empty()) {
    std::vector<std::vector<Param>> cols(18);
    for (const Job& j : batch.new_jobs) {
      cols[0].emplace_back(j.id);
      cols[1].push_back(PgText(j.queue));
      cols[2].push_back(PgText(j.kind));
      cols[3].push_back(PgText(j.spool));
      cols[4].push_back(PgText(j.name));
      cols[5].emplace_back(static_cast<int64_t>(j.file.dev));
      cols[6].emplace_back(static_cast<int64_t>(j.file.ino));
      cols[7].emplace_back(static_cast<int64_t>(j.file.size));
      cols[8].emplace_back(j.file.mtime_ns);
      cols[9].emplace_back(std::string(StateName(j.state)));
      cols[10].emplace_back(int64_t{j.priority});
      cols[11].emplace_back(int64_t{j.attempts});
      cols[12].emplace_back(int64_t{j.max_attempts});
      cols[13].emplace_back(j.run_at);
      cols[14].emplace_back(j.created_at);
      cols[15].push_back(PgTextOrNull(j.payload));
      cols[16].push_back(PgTextOrNull(j.idempotency_key));
      cols[17].push_back(PgTextOrNull(j.lease_owner));
    }
    Query q;
    q.sql = "INSERT INTO " + T("jobs") +
            " (id, queue, kind, spool, name, file_dev, file_ino, file_size, file_mtime_ns, state,"
            " priority, attempts, max_attempts, run_at, created_at, payload, idempotency_key,"
            " lease_owner)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],"
            " $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[],"
            " $11::integer[], $12::integer[], $13::integer[], $14::bigint[], $15::bigint[],"
            " $16::text[], $17::text[], $18::text[])";
    for (const auto& c : cols) q.params.emplace_back(pg::ArrayLiteral(c));
    add(std::move(q), batch.new_jobs.size() == 1 ? batch.new_jobs[0].id : 0);
  }
  if (!batch.updates.empty()) {
    std::vector<std::vector<Param>> cols(12);
    for (const JobUpdate& u : batch.updates) {
      cols[0].emplace_back(u.job_id);
      cols[1].emplace_back(std::string(StateName(u.state)));
      cols[2].emplace_back(int64_t{u.attempts});
      cols[3].emplace_back(u.run_at);
      cols[4].emplace_back(u.last_tried);
      cols[5].push_back(u.finished_at ? Param(u.finished_at) : Param());
      cols[6].push_back(PgTextOrNull(u.error.code));
      cols[7].push_back(PgTextOrNull(u.error.message));
      cols[8].push_back(PgTextOrNull(u.error.detail));
      cols[9].push_back(PgTextOrNull(u.result));
      cols[10].emplace_back(int64_t{u.interruptions});
      cols[11].emplace_back(int64_t{u.priority});
    }
    Query q;
    q.sql = "UPDATE " + T("jobs") +
            " AS j SET state = u.state, attempts = u.attempts, run_at = u.run_at,"
            " last_tried = u.last_tried, finished_at = u.finished_at, error_code = u.error_code,"
            " error_message = u.error_message, error_detail = u.error_detail, result = u.result,"
            " interruptions = u.interruptions, priority = u.priority"
            " FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::bigint[], $5::bigint[],"
            " $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::integer[],"
            " $12::integer[]) AS u(id, state, attempts, run_at, last_tried, finished_at,"
            " error_code, error_message, error_detail, result, interruptions, priority)"
            " WHERE j.id = u.id";
    for (const auto& c : cols) q.params.emplace_back(pg::ArrayLiteral(c));
    add(std::move(q), batch.updates.size() == 1 ? batch.updates[0].job_id : 0);
    for (const JobUpdate& u : batch.updates) {
      for (const ObjectRow& row : u.rows) {
        if (row.table < 0 || static_cast<size_t>(row.table) >= tables_.size()) {
          return Status::Internal("job " + std::to_string(u.job_id) + ": undefined table");
        }
        const Table& t = tables_[static_cast<size_t>(row.table)];
        if (row.values.size() != t.spec.columns.size()) {
          return Status::Internal("job " + std::to_string(u.job_id) + ": a row of " + t.spec.name +
                                  " has " + std::to_string(row.values.size()) + " values for " +
                                  std::to_string(t.spec.columns.size()) + " columns");
        }
        SLUICE_RETURN_IF_ERROR(CheckRow(u.job_id, t, row));
        Query q;
        q.sql = t.upsert_name;
        q.prepared = true;
        for (const Column& c : t.columns) {
          q.params.push_back(Param::Of(row.values[static_cast<size_t>(c.spec)]));
        }
        add(std::move(q), u.job_id, &row);
      }
    }
  }
  // Events last: the counter's lock is held from here to the commit.
  std::vector<std::vector<Param>> ev(6);
  auto event = [&](const Event& e) {
    ev[0].emplace_back(e.ts);
    ev[1].emplace_back(e.job_id);
    ev[2].push_back(PgText(e.queue));
    ev[3].push_back(PgText(e.kind));
    ev[4].push_back(PgText(e.type));
    ev[5].push_back(PgText(e.data));
  };
  for (const Job& j : batch.new_jobs) event(StateEvent(j, j.created_at));
  for (const JobUpdate& u : batch.updates) {
    for (const Event& e : u.events) event(e);
  }
  int64_t n = static_cast<int64_t>(ev[0].size());
  if (n > 0) {
    add(Query{"UPDATE " + T("counters") +
                  " SET value = value + $1 WHERE name = 'events' RETURNING value - $1 + 1",
              {Param(n)}},
        kTakesEventIds);
    Query q;
    q.sql = "INSERT INTO " + T("events") +
            " (id, ts, job_id, queue, kind, type, data)"
            " SELECT c.value - $1 + u.ord, u.ts, u.job_id, u.queue, u.kind, u.type, u.data"
            " FROM " +
            T("counters") +
            " AS c, unnest($2::bigint[], $3::bigint[], $4::text[],"
            " $5::text[], $6::text[], $7::text[]) WITH ORDINALITY"
            " AS u(ts, job_id, queue, kind, type, data, ord) WHERE c.name = 'events'";
    q.params.emplace_back(n);
    for (const auto& c : ev) q.params.emplace_back(pg::ArrayLiteral(c));
    add(std::move(q), 0);
  }
  add(Query{"INSERT INTO " + T("commits") +
                " (token, first_event, at) SELECT $1, value - $2 + 1,"
                " (extract(epoch from clock_timestamp()) * 1000000)::bigint FROM " +
                T("counters") + " WHERE name = 'events'",
            {Param(batch.token), Param(n)}},
      0);
  if (n > 0) {
    add(Query{"SELECT pg_notify($1, '')", {Param("sluice_events:" + options_.pg_schema)}}, 0);
  }
  return Status::Ok();
}

std::string PgStore::RowContext(const Owner& owner, const Query& q, const Status& st) const {
  const ObjectRow& row = *owner.row;
  const Table& t = tables_[static_cast<size_t>(row.table)];
  std::string out = "job " + std::to_string(owner.job) + ": " + t.spec.name + " '" +
                    PrintableLine(ObjectKey(t.spec, row)) + "'";
  // A constraint names its column ("null value in column \"x\" of relation …").
  size_t col = st.message().find("column \"");
  if (col != std::string::npos) {
    size_t start = col + 8, end = st.message().find('"', start);
    std::string name = st.message().substr(start, end == std::string::npos ? 0 : end - start);
    for (const Column& c : t.columns) {
      if (c.name == name) return out + ", field " + c.name + " (" + c.type + ")";
    }
  }
  // A value PostgreSQL could not take (class 22) is quoted ("…: \"2020-01-01T00:00:00+16:00\""):
  // name the field that holds it. Not for other errors, whose message may quote anything.
  if (st.message().find("[22") == std::string::npos) return out;
  for (size_t i = 0; i < t.columns.size() && i < q.params.size(); ++i) {
    const pg::Param& p = q.params[i];
    if (!p.null && !p.text.empty() &&
        st.message().find("\"" + p.text + "\"") != std::string::npos) {
      return out + ", field " + t.columns[i].name + " (" + t.columns[i].type + ")";
    }
  }
  return out;
}

Result<std::optional<int64_t>> PgStore::FindCommit(const std::string& token) {
  auto rows = WriteExec("SELECT first_event FROM " + T("commits") + " WHERE token = $1", {token});
  if (!rows.ok()) return rows.status();
  if (rows->size() == 0) return std::optional<int64_t>();
  return std::optional<int64_t>(rows->Int(0, 0));
}

Status PgStore::Write(WriteBatch* batch) {
  std::lock_guard<std::mutex> lock(write_mu_);
  batch->appended.clear();
  if (batch->token.empty()) batch->fenced.clear();  // else kept from the try in doubt
  // The events the batch appends, in the order they get their ids.
  auto appended = [&](int64_t first) {
    int64_t id = first;
    for (const Job& j : batch->new_jobs) {
      batch->appended.push_back(StateEvent(j, j.created_at));
      batch->appended.back().id = id++;
    }
    for (const JobUpdate& u : batch->updates) {
      for (const Event& e : u.events) {
        batch->appended.push_back(e);
        batch->appended.back().id = id++;
      }
    }
  };
  SLUICE_RETURN_IF_ERROR(Ensure(&write_));
  if (!batch->token.empty()) {
    // Written before, and the outcome was not heard: did it commit?
    auto found = FindCommit(batch->token);
    if (!found.ok()) return found.status();
    if (found->has_value()) {
      appended(**found);
      return Status::Ok();
    }
  } else {
    batch->token = NewToken();
  }
  // Jobs given without an id get theirs here; a failed write takes back only those (the
  // others' ids are their callers', who answer and track them by it).
  std::vector<size_t> numbered_here;
  for (size_t i = 0; i < batch->new_jobs.size(); ++i) {
    if (batch->new_jobs[i].id == 0) numbered_here.push_back(i);
  }
  size_t unnumbered = numbered_here.size();
  if (unnumbered > 0) {
    auto first =
        WriteExec("UPDATE " + T("counters") +
                      " SET value = value + $1 WHERE name = 'jobs' RETURNING value - $1 + 1",
                  {Param(static_cast<int64_t>(unnumbered))});
    if (!first.ok()) return first.status();
    int64_t id = first->Int(0, 0);
    for (Job& j : batch->new_jobs) {
      if (j.id == 0) j.id = id++;
    }
  }
  for (const Table& t : tables_) {
    Status st = write_.Prepare(t.upsert_name, t.upsert);
    if (!st.ok()) return Note(st, &write_);
  }
  std::vector<Query> queries;
  std::vector<Owner> owners;
  std::vector<pg::Rows> results;
  auto forget_ids = [&]() {
    for (size_t i : numbered_here) batch->new_jobs[i].id = 0;
  };
  // A stale fenced update fails the transaction before anything is written: drop it and
  // write the rest (again, should another claim move on meanwhile).
  for (int round = 0;; ++round) {
    queries.clear();
    owners.clear();
    results.clear();
    Status built = BuildWrite(*batch, &queries, &owners);
    if (!built.ok()) {
      forget_ids();
      return built;
    }
    size_t failed = 0;
    Status st = write_.Pipeline(queries, &results, &failed);
    if (st.ok()) break;
    // A lost connection keeps the token: the retry finds out whether this committed.
    if (st.code() == Code::kUnavailable && write_.Broken()) return Note(st, &write_);
    size_t lost = st.message().find("lease taken over: ");
    if (failed < owners.size() && owners[failed].job == kHold && lost != std::string::npos &&
        st.message().find("[SL002]") != std::string::npos) {
      batch->token.clear();
      forget_ids();
      return Status::Cancelled(st.message().substr(lost, st.message().find(" [SL002]") - lost));
    }
    size_t at = st.message().find(kStale);
    if (failed < owners.size() && owners[failed].job == kFence && at != std::string::npos &&
        round < 8) {
      std::set<int64_t> stale;
      std::string list = st.message().substr(at + kStale.size());
      for (size_t i = 0; i < list.size();) {
        size_t end = list.find_first_not_of("0123456789", i);
        if (end == i) break;
        stale.insert(std::stoll(list.substr(i, end - i)));
        if (end == std::string::npos || list[end] != ',') break;
        i = end + 1;
      }
      auto gone = std::remove_if(
          batch->updates.begin(), batch->updates.end(),
          [&](const JobUpdate& u) { return u.epoch > 0 && stale.count(u.job_id) > 0; });
      if (!stale.empty() && gone != batch->updates.end()) {
        batch->updates.erase(gone, batch->updates.end());
        batch->fenced.insert(batch->fenced.end(), stale.begin(), stale.end());
        continue;
      }
    }
    batch->token.clear();
    forget_ids();
    if (failed < owners.size() && owners[failed].row != nullptr) {
      return Note(Status(st).Annotate(RowContext(owners[failed], queries[failed], st)), &write_);
    }
    if (failed < owners.size() && owners[failed].job > 0) {
      return Note(st.Annotate("job " + std::to_string(owners[failed].job)), &write_);
    }
    return Note(st, &write_);
  }
  Back();
  int64_t first = 0;
  for (size_t i = 0; i < owners.size(); ++i) {
    if (owners[i].job == kTakesEventIds) first = results[i].Int(0, 0);
  }
  appended(first);
  FoldJobCountsIfDue();
  return Status::Ok();
}

void PgStore::FoldJobCountsIfDue() {
  auto now = std::chrono::steady_clock::now();
  if (now - last_fold_ < std::chrono::seconds(5)) return;
  last_fold_ = now;
  auto r = WriteExec("SELECT " + T("fold_ended_job_counts") + "()", {});
  if (!r.ok()) spdlog::debug("ended job counts not folded: {}", r.status().ToString());
}

Result<int64_t> PgStore::ReserveJobIds(int64_t count) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto first = WriteExec("UPDATE " + T("counters") +
                             " SET value = value + $1 WHERE name = 'jobs' RETURNING value - $1 + 1",
                         {Param(std::max<int64_t>(count, 1))});
  if (!first.ok()) return first.status();
  return first->Int(0, 0);
}

Result<int64_t> PgStore::MarkRetried(const std::vector<int64_t>& ids, int64_t at) {
  if (ids.empty()) return int64_t{0};
  std::lock_guard<std::mutex> lock(write_mu_);
  std::vector<Param> list;
  for (int64_t id : ids) list.emplace_back(id);
  auto r = WriteExec("UPDATE " + T("jobs") +
                         " SET retried_at = $1 WHERE id = ANY($2::bigint[]) AND retried_at = 0"
                         " AND state IN ('failed', 'cancelled')",
                     {Param(std::max<int64_t>(at, 1)), pg::ArrayLiteral(list)});
  if (!r.ok()) return r.status();
  return r->Affected();
}

Result<std::optional<std::string>> PgStore::GetValue(const std::string& ns,
                                                     const std::string& key) {
  auto r = Read("SELECT value FROM " + T("kv") + " WHERE ns = $1 AND key = $2",
                {PgText(ns), PgText(key)});
  if (!r.ok()) return r.status();
  if (r->size() == 0) return std::optional<std::string>();
  return std::optional<std::string>(r->Text(0, 0));
}

Status PgStore::PutValue(const std::string& ns, const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto r = WriteExec("INSERT INTO " + T("kv") +
                         " (ns, key, value) VALUES ($1, $2, $3)"
                         " ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value",
                     {PgText(ns), PgText(key), PgText(value)});
  return r.status();
}

Result<std::string> PgStore::SettleValue(const std::string& ns, const std::string& key,
                                         const std::string& value) {
  std::lock_guard<std::mutex> lock(write_mu_);
  // An insert that meets another's uncommitted one waits for it, then does nothing.
  auto r = WriteExec("WITH put AS (INSERT INTO " + T("kv") +
                         " (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO NOTHING"
                         " RETURNING value) SELECT value FROM put",
                     {PgText(ns), PgText(key), PgText(value)});
  if (!r.ok()) return r.status();
  if (r->size() > 0) return r->Text(0, 0);
  auto there = WriteExec("SELECT value FROM " + T("kv") + " WHERE ns = $1 AND key = $2",
                         {PgText(ns), PgText(key)});
  if (!there.ok()) return there.status();
  if (there->size() == 0) return Status::Internal("kv " + ns + "/" + key + " vanished");
  return there->Text(0, 0);
}

Status PgStore::CheckIntegrity() {
  // The server keeps its own consistency; here: the counters are above every stored id.
  auto r =
      Read("SELECT (SELECT value FROM " + T("counters") +
               " WHERE name = 'jobs') >= "
               "COALESCE((SELECT MAX(id) FROM " +
               T("jobs") + "), 0), (SELECT value FROM " + T("counters") +
               " WHERE name = 'events') >= COALESCE((SELECT MAX(id) FROM " + T("events") + "), 0)",
           {});
  if (!r.ok()) return r.status();
  if (r->Text(0, 0) != "t" || r->Text(0, 1) != "t") {
    return Status::Internal("a counter is below the largest id stored");
  }
  return Status::Ok();
}

Status PgStore::ImportRows(const std::vector<ObjectRow>& rows) {
  std::lock_guard<std::mutex> lock(write_mu_);
  SLUICE_RETURN_IF_ERROR(Ensure(&write_));
  for (const Table& t : tables_) {
    Status st = write_.Prepare(t.upsert_name, t.upsert);
    if (!st.ok()) return Note(st, &write_);
  }
  std::vector<Query> queries;
  std::vector<Owner> owners;
  for (const ObjectRow& row : rows) {
    if (row.table < 0 || static_cast<size_t>(row.table) >= tables_.size()) {
      return Status::Internal("undefined table");
    }
    const Table& t = tables_[static_cast<size_t>(row.table)];
    SLUICE_RETURN_IF_ERROR(CheckRow(0, t, row));
    Query q;
    q.sql = t.upsert_name;
    q.prepared = true;
    for (const Column& c : t.columns)
      q.params.push_back(Param::Of(row.values[static_cast<size_t>(c.spec)]));
    queries.push_back(std::move(q));
    owners.push_back(Owner{0, &row});
  }
  std::vector<pg::Rows> results;
  size_t failed = 0;
  Status st = write_.Pipeline(queries, &results, &failed);
  if (!st.ok() && failed < owners.size()) {
    return Note(Status(st).Annotate(RowContext(owners[failed], queries[failed], st)), &write_);
  }
  return Note(st, &write_);
}

Result<std::vector<ObjectRow>> PgStore::ScanRows(int table, const std::string& after_key,
                                                 int limit) {
  Table t;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (table < 0 || static_cast<size_t>(table) >= tables_.size()) {
      return Status::InvalidArgument("no table " + std::to_string(table));
    }
    t = tables_[static_cast<size_t>(table)];
  }
  std::string cols, key;
  for (const Column& c : t.columns) {
    std::string q = pg::QuoteIdent(c.name);
    // Arrays back as JSON (as they came); the rest as their text.
    bool array = c.type.size() > 2 && c.type.compare(c.type.size() - 2, 2, "[]") == 0;
    cols += (cols.empty() ? "" : ", ") + (array ? "to_jsonb(" + q + ")::text" : q + "::text");
    if (t.spec.columns[static_cast<size_t>(c.spec)].merge == MergeRule::kKey) key = q;
  }
  auto r = Read("SELECT " + cols + " FROM " + t.qualified + " WHERE " + key +
                    " COLLATE \"C\" > $1 ORDER BY " + key + " COLLATE \"C\" LIMIT $2",
                {PgText(after_key), Param(int64_t{limit})});
  if (!r.ok()) return r.status();
  std::vector<ObjectRow> rows;
  for (int i = 0; i < r->size(); ++i) {
    ObjectRow row{table, std::vector<Value>(t.spec.columns.size())};
    for (size_t c = 0; c < t.columns.size(); ++c) {
      int col = static_cast<int>(c);
      if (r->IsNull(i, col)) continue;
      auto& v = row.values[static_cast<size_t>(t.columns[c].spec)];
      switch (t.spec.columns[static_cast<size_t>(t.columns[c].spec)].type) {
        case ColumnType::kInteger:
          v = t.columns[c].type == "boolean" ? int64_t{r->Text(i, col) == "true"} : r->Int(i, col);
          break;
        case ColumnType::kReal:
          v = r->Real(i, col);
          break;
        case ColumnType::kText:
          v = r->Text(i, col);
          break;
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<bool> PgStore::WaitForEvents(int timeout_ms) {
  std::lock_guard<std::mutex> lock(listen_mu_);
  if (listen_.Broken()) {
    Status st = Ensure(&listen_);
    if (!st.ok()) return st;
    st = listen_.Listen("sluice_events:" + options_.pg_schema);
    if (!st.ok()) return st;
    return true;  // (re)connected: something may have been missed, look
  }
  auto got = listen_.WaitNotify(timeout_ms);
  if (!got.ok()) listen_ = pg::Conn();  // made again, and LISTENing again, on the next call
  return got;
}

}  // namespace sluice
