// Opening a store by its URL, and its schema version.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "store/postgres/pg_store.h"
#include "store/schema.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

namespace sluice {
namespace {

constexpr std::string_view kSqlite = "sqlite:";

Status Unsupported(const std::string& url) {
  return Status::InvalidArgument("unsupported --database '" + url + "' (give sqlite:PATH)");
}

// A sqlite: URL's path; NotFound when `must_exist` and there is no such file.
Result<std::string> SqlitePath(const std::string& url, bool must_exist) {
  std::string path = SqliteFileOf(url);
  if (path.empty()) return Status::InvalidArgument("--database sqlite: needs a path");
  struct stat st;
  if (must_exist && ::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return Status::NotFound("the database " + path +
                            " does not exist (give --database, or run the daemon first)");
  }
  return path;
}

}  // namespace

Result<bool> Store::WaitForEvents(int timeout_ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
  return false;
}

Status Store::FillPayloads(std::vector<Job>* jobs) {
  for (Job& j : *jobs) {
    if (!j.spool.empty()) continue;
    auto payload = JobPayload(j.id);
    if (!payload.ok()) return payload.status();
    j.payload = std::move(*payload);
  }
  return Status::Ok();
}

bool IsPostgresUrl(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) return true;
  // A libpq "key=value …" string.
  return url.rfind(kSqlite, 0) != 0 && url.find('=') != std::string::npos &&
         url.find("://") == std::string::npos;
}

std::string SqliteFileOf(const std::string& url) {
  return url.rfind(kSqlite, 0) == 0 ? url.substr(kSqlite.size()) : "";
}

std::string DescribeStore(const std::string& url, const StoreOptions& options) {
  if (!IsPostgresUrl(url)) return url;
  return "postgresql " + pg::DescribeServer(url) + " schema " + options.pg_schema;
}

Result<std::unique_ptr<Store>> OpenExistingStore(const std::string& url,
                                                 const StoreOptions& options) {
  if (url.rfind(kSqlite, 0) == 0) {
    auto path = SqlitePath(url, true);
    if (!path.ok()) return path.status();
  }
  if (IsPostgresUrl(url)) {
    // A mistyped --pg-schema must not leave an empty schema behind.
    auto report = PgStore::Check(url, options);
    if (!report.ok()) return report.status();
    if (report->version == 0) {
      return Status::NotFound("no Sluice tables in " + DescribeStore(url, options) +
                              " (check --pg-schema, or run the daemon or sluice migrate first)");
    }
  }
  return OpenStore(url, options);
}

Result<std::unique_ptr<Store>> OpenStore(const std::string& url, const StoreOptions& options) {
  if (IsPostgresUrl(url)) {
    auto s = PgStore::Open(url, options);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(std::move(*s));
  }
  if (url.rfind(kSqlite, 0) == 0) {
    auto path = SqlitePath(url, false);
    if (!path.ok()) return path.status();
    auto s = SqliteStore::Open(*path);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(std::move(*s));
  }
  return Unsupported(url);
}

Result<SchemaReport> CheckSchema(const std::string& url, const StoreOptions& options) {
  if (IsPostgresUrl(url)) return PgStore::Check(url, options);
  if (url.rfind(kSqlite, 0) != 0) return Unsupported(url);
  auto path = SqlitePath(url, true);
  if (!path.ok()) return path.status();
  auto db = sqlite::Db::Open(*path);
  if (!db.ok()) return db.status();
  auto version = sqlite::SchemaVersion(*db);
  if (!version.ok()) return version.status();
  SchemaReport report;
  report.version = *version;
  for (const Migration& m : sqlite::StoreMigrations()) {
    report.latest = m.version;
    if (m.version > *version) report.pending.push_back(std::to_string(m.version) + ": " + m.what);
  }
  return report;
}

Result<SchemaReport> MigrateSchema(const std::string& url, const StoreOptions& options) {
  if (IsPostgresUrl(url)) {
    auto store = PgStore::Open(url, options);  // it migrates as it opens
    if (!store.ok()) return store.status();
    return (*store)->schema();
  }
  if (url.rfind(kSqlite, 0) != 0) return Unsupported(url);
  auto path = SqlitePath(url, false);
  if (!path.ok()) return path.status();
  auto store = SqliteStore::Open(*path);  // it migrates as it opens
  if (!store.ok()) return store.status();
  return (*store)->schema();
}

}  // namespace sluice
