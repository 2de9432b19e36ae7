// Thin RAII wrappers over the SQLite C API: Db (a connection) and Stmt (a prepared statement).
// SQLITE_BUSY and SQLITE_LOCKED map to Unavailable (retry); SQLITE_FULL and SQLITE_IOERR map
// to Unavailable and IOError; constraint failures to InvalidArgument.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "store/objects.h"

namespace sluice::sqlite {

Status FromSqlite(int rc, sqlite3* db, std::string_view context);

class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&& o) noexcept;
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql);

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& BindNull(int i);
  Stmt& Bind(int i, const Value& v);
  // Steps once: true with a row, false when done.
  Result<bool> Step();
  // Steps to completion, then resets.
  Status Run();
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  double Real(int col) const { return sqlite3_column_double(s_, col); }
  std::string Text(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  int Columns() const { return sqlite3_column_count(s_); }

 private:
  sqlite3_stmt* s_ = nullptr;
  sqlite3* db_ = nullptr;
};

class Db {
 public:
  Db() = default;
  Db(Db&& o) noexcept;
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  static Result<Db> Open(const std::string& path);
  Status Exec(std::string_view sql);
  sqlite3* get() const { return db_; }
  Status Close();

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace sluice::sqlite
