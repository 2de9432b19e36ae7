// libpq wrappers: connections, results, SQLSTATE mapping, pipelines in nonblocking mode (the
// output is flushed while results are read, so a large pipeline cannot deadlock on full
// socket buffers).
#include "store/postgres/pg_conn.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/spdlog.h"

namespace sluice::pg {
namespace {

// A libpq message on one line: its first (libpq adds hints on further lines).
std::string Trim(std::string s) {
  size_t nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// Code for an SQLSTATE (five characters), or for a failure with none (connection-level).
Code CodeOf(const char* sqlstate) {
  if (sqlstate == nullptr || std::strlen(sqlstate) != 5) return Code::kUnavailable;
  std::string_view s(sqlstate, 5);
  std::string_view cls = s.substr(0, 2);
  // 25006: a read-only transaction, as on a server that is (still, or again) a standby
  // during a failover, or a database set read-only for maintenance: writes wait.
  if (cls == "08" || cls == "53" || cls == "58" || s == "57P01" || s == "57P02" || s == "57P03" ||
      s == "57P05" || s == "40001" || s == "40P01" || s == "55P03" || s == "57014" ||
      s == "25006") {
    return Code::kUnavailable;
  }
  if (s == "23505") return Code::kAlreadyExists;
  if (cls == "22" || cls == "23") return Code::kInvalidArgument;
  return Code::kInternal;
}

const char* Get(const PQconninfoOption* opts, const char* keyword) {
  for (const PQconninfoOption* o = opts; o != nullptr && o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, keyword) == 0 && o->val != nullptr && *o->val != '\0') {
      return o->val;
    }
  }
  return nullptr;
}

std::string Describe(const char* host, const char* port, const char* db, const char* user) {
  auto or_default = [](const char* v, const char* env, const char* fallback) -> std::string {
    if (v != nullptr && *v != '\0') return v;
    const char* e = std::getenv(env);
    if (e != nullptr && *e != '\0') return e;
    return fallback;
  };
  std::string u = or_default(user, "PGUSER", "");
  if (u.empty()) {
    const char* login = std::getenv("USER");
    u = login != nullptr ? login : "?";
  }
  std::string d = or_default(db, "PGDATABASE", u.c_str());
  return "host " + or_default(host, "PGHOST", "(local socket)") + " port " +
         or_default(port, "PGPORT", "5432") + " database " + d + " user " + u;
}

// Waits until the socket is readable (and, with `write`, writable), or `timeout_ms` (-1:
// forever). False when the connection has no socket.
bool WaitSocket(pg_conn* conn, bool write, int timeout_ms) {
  int fd = PQsocket(conn);
  if (fd < 0) return false;
  pollfd p{fd, static_cast<short>(POLLIN | (write ? POLLOUT : 0)), 0};
  int rc;
  do {
    rc = ::poll(&p, 1, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  return rc >= 0;
}

}  // namespace

Param Param::Of(const Value& v) {
  switch (v.index()) {
    case 1:
      return Param(std::get<int64_t>(v));
    case 2: {
      double d = std::get<double>(v);
      if (std::isnan(d)) return Param("NaN");
      if (std::isinf(d)) return Param(d > 0 ? "Infinity" : "-Infinity");
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", d);
      return Param(std::string_view(buf));
    }
    case 3:
      return Param(std::get<std::string>(v));
    default:
      return Param();
  }
}

std::string ArrayLiteral(const std::vector<Param>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    if (items[i].null) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char c : items[i].text) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

int Rows::size() const { return res_ ? PQntuples(res_.get()) : 0; }
bool Rows::IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
std::string Rows::Text(int row, int col) const {
  return std::string(PQgetvalue(res_.get(), row, col),
                     static_cast<size_t>(PQgetlength(res_.get(), row, col)));
}
int64_t Rows::Int(int row, int col) const {
  return std::strtoll(PQgetvalue(res_.get(), row, col), nullptr, 10);
}
double Rows::Real(int row, int col) const {
  return std::strtod(PQgetvalue(res_.get(), row, col), nullptr);
}
int64_t Rows::Affected() const {
  const char* n = res_ ? PQcmdTuples(res_.get()) : "";
  return *n ? std::strtoll(n, nullptr, 10) : 0;
}

std::string DescribeServer(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err != nullptr) PQfreemem(err);
  std::string out =
      Describe(Get(opts, "host"), Get(opts, "port"), Get(opts, "dbname"), Get(opts, "user"));
  if (opts != nullptr) PQconninfoFree(opts);
  return out;
}

Conn::Conn(Conn&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)),
      server_(std::move(o.server_)),
      prepared_(std::move(o.prepared_)) {}

Conn& Conn::operator=(Conn&& o) noexcept {
  if (this != &o) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = std::exchange(o.conn_, nullptr);
    server_ = std::move(o.server_);
    prepared_ = std::move(o.prepared_);
  }
  return *this;
}

Conn::~Conn() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<Conn> Conn::Connect(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string why = err != nullptr ? Trim(err) : "cannot parse it";
    if (err != nullptr) PQfreemem(err);
    return Status::InvalidArgument("--database is not a PostgreSQL connection string: " + why);
  }
  // Defaults a daemon wants, unless the connection string says otherwise: give up connecting
  // after 10 s, and notice a silently dead peer within about a minute.
  std::vector<const char*> keys = {"dbname"}, values = {conninfo.c_str()};
  auto fallback = [&](const char* key, const char* value) {
    if (Get(opts, key) == nullptr) {
      keys.push_back(key);
      values.push_back(value);
    }
  };
  fallback("connect_timeout", "10");
  fallback("keepalives_idle", "30");
  fallback("keepalives_interval", "10");
  fallback("keepalives_count", "3");
  fallback("application_name", "sluice");
  PQconninfoFree(opts);
  keys.push_back(nullptr);
  values.push_back(nullptr);
  Conn c;
  c.conn_ = PQconnectdbParams(keys.data(), values.data(), 1);
  if (c.conn_ == nullptr) return Status::Unavailable("out of memory connecting to PostgreSQL");
  if (PQstatus(c.conn_) != CONNECTION_OK) {
    std::string why = Trim(PQerrorMessage(c.conn_));
    return Status::Unavailable("cannot connect to PostgreSQL at " + DescribeServer(conninfo) +
                               ": " + why);
  }
  c.server_ = Describe(PQhost(c.conn_), PQport(c.conn_), PQdb(c.conn_), PQuser(c.conn_));
  // The server's notices ("terminating connection due to immediate shutdown") go to the
  // debug log, not raw onto stderr.
  PQsetNoticeProcessor(
      c.conn_, [](void*, const char* message) { spdlog::debug("PostgreSQL: {}", Trim(message)); },
      nullptr);
  // Every statement sees and writes UTC micros as numbers; timestamptz columns of other
  // tables are read back in UTC.
  auto tz = c.Exec("SET TIME ZONE 'UTC'");
  if (!tz.ok()) return tz.status();
  return c;
}

bool Conn::Broken() const { return conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK; }

Status Conn::Error(pg_result* res, std::string_view context) const {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = res != nullptr ? PQresultErrorMessage(res) : "";
  if (msg.empty() && conn_ != nullptr) msg = PQerrorMessage(conn_);
  msg = Trim(msg);
  // libpq prefixes "ERROR:  "; keep the message itself.
  if (msg.rfind("ERROR:  ", 0) == 0) msg = msg.substr(8);
  size_t nl = msg.find('\n');
  std::string first = nl == std::string::npos ? msg : msg.substr(0, nl);
  const char* detail = res != nullptr ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : nullptr;
  if (detail != nullptr) first += " (" + std::string(detail) + ")";
  Code code = CodeOf(state);
  if (state == nullptr && conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK && res != nullptr) {
    code = Code::kInternal;  // a failure of ours, not the connection's
  }
  std::string text = std::string(context) + ": " + first;
  if (state != nullptr) text += " [" + std::string(state) + "]";
  switch (code) {
    case Code::kUnavailable:
      return Status::Unavailable(text);
    case Code::kAlreadyExists:
      return Status::AlreadyExists(text);
    case Code::kInvalidArgument:
      return Status::InvalidArgument(text);
    default:
      return Status::Internal(text);
  }
}

Result<Rows> Conn::Exec(std::string_view sql, const std::vector<Param>& params) {
  if (conn_ == nullptr) return Status::Unavailable("not connected to PostgreSQL");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p.null ? nullptr : p.text.c_str());
  std::string q(sql);
  PGresult* res = PQexecParams(conn_, q.c_str(), static_cast<int>(params.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
  ExecStatusType st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Status err = Error(res, q.substr(0, 60));
    PQclear(res);
    return err;
  }
  Rows r;
  r.res_.reset(res, PQclear);
  return r;
}

Status Conn::Script(std::string_view sql) {
  if (conn_ == nullptr) return Status::Unavailable("not connected to PostgreSQL");
  std::string q(sql);
  PGresult* res = PQexec(conn_, q.c_str());
  ExecStatusType st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  Status out = Status::Ok();
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) out = Error(res, "script");
  PQclear(res);
  // A multi-statement query returns the last result; drain any others.
  while ((res = PQgetResult(conn_)) != nullptr) PQclear(res);
  return out;
}

Status Conn::Prepare(const std::string& name, std::string_view sql) {
  for (const std::string& p : prepared_) {
    if (p == name) return Status::Ok();
  }
  if (conn_ == nullptr) return Status::Unavailable("not connected to PostgreSQL");
  std::string q(sql);
  PGresult* res = PQprepare(conn_, name.c_str(), q.c_str(), 0, nullptr);
  ExecStatusType st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  Status out = Status::Ok();
  if (st != PGRES_COMMAND_OK) out = Error(res, "prepare " + name);
  PQclear(res);
  if (out.ok()) prepared_.push_back(name);
  return out;
}

Status Conn::Pipeline(const std::vector<Query>& queries, std::vector<Rows>* results,
                      size_t* failed) {
  *failed = queries.size();
  results->clear();
  if (conn_ == nullptr) return Status::Unavailable("not connected to PostgreSQL");
  // Anything that goes wrong with the connection itself: drop it (the store reconnects).
  auto lost = [this](const std::string& what) {
    Status st = Status::Unavailable("PostgreSQL " + server_ + ": " + what + ": " +
                                    Trim(PQerrorMessage(conn_)));
    PQfinish(conn_);
    conn_ = nullptr;
    prepared_.clear();
    return st;
  };
  if (PQsetnonblocking(conn_, 1) != 0 || PQenterPipelineMode(conn_) != 1) {
    return lost("cannot start a pipeline");
  }
  std::vector<const char*> values;
  for (const Query& q : queries) {
    values.clear();
    for (const Param& p : q.params) values.push_back(p.null ? nullptr : p.text.c_str());
    int n = static_cast<int>(q.params.size());
    int ok = q.prepared
                 ? PQsendQueryPrepared(conn_, q.sql.c_str(), n, values.data(), nullptr, nullptr, 0)
                 : PQsendQueryParams(conn_, q.sql.c_str(), n, nullptr, values.data(), nullptr,
                                     nullptr, 0);
    if (ok != 1) return lost("cannot send a statement");
  }
  if (PQpipelineSync(conn_) != 1) return lost("cannot send the sync");
  // Flush everything, reading what comes back meanwhile.
  while (true) {
    int f = PQflush(conn_);
    if (f < 0) return lost("cannot send");
    if (f == 0) break;
    if (!WaitSocket(conn_, true, -1) || PQconsumeInput(conn_) != 1) return lost("cannot send");
  }
  auto next = [&](PGresult** out) -> bool {
    while (PQisBusy(conn_)) {
      if (!WaitSocket(conn_, false, -1) || PQconsumeInput(conn_) != 1) return false;
    }
    *out = PQgetResult(conn_);
    return true;
  };
  Status first_error = Status::Ok();
  results->resize(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) {
    PGresult* res = nullptr;
    if (!next(&res)) return lost("the connection was lost");
    if (res == nullptr) return lost("a result is missing");
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      (*results)[i].res_.reset(res, PQclear);
    } else {
      if (st != PGRES_PIPELINE_ABORTED && first_error.ok()) {
        *failed = i;
        first_error = Error(res, "statement " + std::to_string(i + 1));
      }
      PQclear(res);
    }
    // Each statement's results end with a null.
    PGresult* end = nullptr;
    if (!next(&end)) return lost("the connection was lost");
    if (end != nullptr) {
      PQclear(end);
      return lost("unexpected results");
    }
  }
  PGresult* sync = nullptr;
  if (!next(&sync) || sync == nullptr) return lost("the connection was lost at commit");
  ExecStatusType st = PQresultStatus(sync);
  Status commit = st == PGRES_PIPELINE_SYNC ? Status::Ok() : Error(sync, "commit");
  PQclear(sync);
  if (PQexitPipelineMode(conn_) != 1 || PQsetnonblocking(conn_, 0) != 0) {
    return lost("cannot leave the pipeline");
  }
  if (!first_error.ok()) return first_error;
  return commit;
}

Status Conn::Listen(const std::string& channel) {
  auto r = Exec("LISTEN \"" + channel + "\"");
  return r.status();
}

Result<bool> Conn::WaitNotify(int timeout_ms) {
  if (conn_ == nullptr) return Status::Unavailable("not connected to PostgreSQL");
  auto drain = [this]() {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_)) {
      any = true;
      PQfreemem(n);
    }
    return any;
  };
  if (PQconsumeInput(conn_) != 1) return Status::Unavailable(Trim(PQerrorMessage(conn_)));
  if (drain()) return true;
  if (!WaitSocket(conn_, false, timeout_ms)) return Status::Unavailable("no socket");
  if (PQconsumeInput(conn_) != 1) return Status::Unavailable(Trim(PQerrorMessage(conn_)));
  return drain();
}

}  // namespace sluice::pg
