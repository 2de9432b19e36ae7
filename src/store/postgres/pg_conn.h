// Thin wrappers over libpq: Conn (one connection), Rows (a result), Param (a text parameter),
// and pipelines (many statements, one round trip, one implicit transaction). The only
// translation unit that includes libpq-fe.h is pg_conn.cc.
//
// Errors map by SQLSTATE: a lost connection, a server shutting down or starting (57P01,
// 57P03), serialization failures and deadlocks (40001, 40P01), lack of resources (class 53:
// disk full, out of memory, too many connections), system errors (class 58), a cancelled or
// timed-out statement (57014, 57P05) and a read-only transaction (25006: a standby, a
// database set read-only) are Unavailable (retry); data and constraint errors (classes 22, 23)
// InvalidArgument (unique violations AlreadyExists); the rest Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/objects.h"

struct pg_conn;
struct pg_result;

namespace sluice::pg {

// A statement parameter, sent as text; NULL when `null`.
struct Param {
  bool null = true;
  std::string text;
  Param() = default;
  Param(std::string_view s) : null(false), text(s) {}         // NOLINT: implicit on purpose
  Param(const char* s) : null(false), text(s) {}              // NOLINT
  Param(const std::string& s) : null(false), text(s) {}       // NOLINT
  Param(int64_t v) : null(false), text(std::to_string(v)) {}  // NOLINT
  Param(int v) : null(false), text(std::to_string(v)) {}      // NOLINT
  static Param Of(const Value& v);
  static Param NullIfEmpty(const std::string& s) { return s.empty() ? Param() : Param(s); }
};

// A text[] (or bigint[]) literal of `items`, for "unnest($1::text[])": bulk rows in one
// parameter. Null items become NULL elements.
std::string ArrayLiteral(const std::vector<Param>& items);

class Rows {
 public:
  Rows() = default;
  int size() const;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;
  double Real(int row, int col) const;
  // Rows an INSERT/UPDATE/DELETE touched.
  int64_t Affected() const;

 private:
  friend class Conn;
  std::shared_ptr<pg_result> res_;
};

// One statement of a pipeline.
struct Query {
  std::string sql;  // SQL text, or the name of a statement prepared with Conn::Prepare
  std::vector<Param> params;
  bool prepared = false;
};

class Conn {
 public:
  Conn() = default;
  Conn(Conn&&) noexcept;
  Conn& operator=(Conn&&) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  // Connects (libpq conninfo: a URL or key=value pairs; PG* variables and ~/.pgpass apply).
  // Unavailable naming the server (host, port, database, user; never a password) on failure.
  static Result<Conn> Connect(const std::string& conninfo);

  bool connected() const { return conn_ != nullptr; }
  // The connection was lost (the next use fails; reconnect).
  bool Broken() const;
  // "host H port P database D user U", from the live connection or the conninfo.
  const std::string& server() const { return server_; }

  // One statement, with parameters (extended protocol).
  Result<Rows> Exec(std::string_view sql, const std::vector<Param>& params = {});
  // Several statements separated by ';', no parameters (simple protocol): DDL scripts.
  Status Script(std::string_view sql);
  // Prepares `sql` under `name` once per connection.
  Status Prepare(const std::string& name, std::string_view sql);

  // Sends `queries` as one pipeline followed by one Sync: one round trip, and without a
  // BEGIN among them one implicit transaction committed at the Sync (all or nothing). On
  // error, *failed is the index of the statement that failed (queries.size() when the
  // failure was not one statement's, e.g. the connection) and nothing was committed, unless
  // the connection was lost after the Sync was sent (then the outcome is unknown:
  // Unavailable, and the caller must find out). `results` gets one Rows per query.
  Status Pipeline(const std::vector<Query>& queries, std::vector<Rows>* results, size_t* failed);

  // LISTEN on `channel`; WaitNotify waits up to `timeout_ms` for a notification (true) or
  // not (false).
  Status Listen(const std::string& channel);
  Result<bool> WaitNotify(int timeout_ms);

 private:
  Status Error(pg_result* res, std::string_view context) const;
  pg_conn* conn_ = nullptr;
  std::string server_;
  std::vector<std::string> prepared_;
};

// The server a conninfo names, without any password: "host H port P database D user U".
std::string DescribeServer(const std::string& conninfo);

}  // namespace sluice::pg
