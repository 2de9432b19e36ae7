// SQLite RAII wrappers.
#include "store/sqlite/sqlite_db.h"

#include <utility>

namespace sluice::sqlite {

Status FromSqlite(int rc, sqlite3* db, std::string_view context) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  std::string msg(context);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return Status::AlreadyExists(std::move(msg));
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return Status::Unavailable(std::move(msg));
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return Status::InvalidArgument(std::move(msg));
    case SQLITE_IOERR:
      return Status::IOError(std::move(msg));
    // A path that cannot be opened, a file that is not a database, no permission: the user's
    // to fix, not a fault of the program.
    case SQLITE_CANTOPEN:
      return Status::FailedPrecondition(
          msg + " (does its directory exist, and may this user write there?)");
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return Status::FailedPrecondition(msg + " (is it a SQLite database?)");
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return Status::FailedPrecondition(std::move(msg));
    default:
      return Status::Internal(std::move(msg));
  }
}

Stmt::Stmt(Stmt&& o) noexcept
    : s_(std::exchange(o.s_, nullptr)), db_(std::exchange(o.db_, nullptr)) {}
Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (s_ != nullptr) sqlite3_finalize(s_);
    s_ = std::exchange(o.s_, nullptr);
    db_ = std::exchange(o.db_, nullptr);
  }
  return *this;
}
Stmt::~Stmt() {
  if (s_ != nullptr) sqlite3_finalize(s_);
}

Result<Stmt> Stmt::Prepare(sqlite3* db, std::string_view sql) {
  Stmt st;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &st.s_, nullptr);
  if (rc != SQLITE_OK) return FromSqlite(rc, db, "prepare " + std::string(sql.substr(0, 60)));
  st.db_ = db;
  return st;
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}
Stmt& Stmt::Bind(int i, const Value& v) {
  switch (v.index()) {
    case 0:
      sqlite3_bind_null(s_, i);
      break;
    case 1:
      sqlite3_bind_int64(s_, i, std::get<int64_t>(v));
      break;
    case 2:
      sqlite3_bind_double(s_, i, std::get<double>(v));
      break;
    case 3: {
      const std::string& s = std::get<std::string>(v);
      // SQLITE_STATIC: the row outlives the step that uses it.
      sqlite3_bind_text64(s_, i, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
      break;
    }
  }
  return *this;
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = FromSqlite(rc, db_, "step");
  sqlite3_reset(s_);
  return st;
}

Status Stmt::Run() {
  int rc;
  while ((rc = sqlite3_step(s_)) == SQLITE_ROW) {
  }
  Status st = FromSqlite(rc, db_, "step");
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
  return st;
}

void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(s_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(s_, col)));
}

Db::Db(Db&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(o.db_, nullptr);
  }
  return *this;
}
Db::~Db() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Result<Db> Db::Open(const std::string& path) {
  // No memory statistics: with them every SQLite malloc and free takes a global mutex (10% of
  // the writer thread's time under load). Must come before SQLite initialises.
  static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)configured;
  Db db;
  int rc =
      sqlite3_open_v2(path.c_str(), &db.db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return FromSqlite(rc, db.db_, "open " + path);
  sqlite3_extended_result_codes(db.db_, 1);
  sqlite3_busy_timeout(db.db_, 5000);
  return db;
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Status st = FromSqlite(rc, nullptr, "exec");
    return Status(st).Annotate(msg);
  }
  return Status::Ok();
}

Status Db::Close() {
  if (db_ == nullptr) return Status::Ok();
  int rc = sqlite3_close(db_);
  if (rc != SQLITE_OK) return FromSqlite(rc, db_, "close");
  db_ = nullptr;
  return Status::Ok();
}

}  // namespace sluice::sqlite
