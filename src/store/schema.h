// Schema versions: each store records the version of its layout and brings an older one up to
// date with numbered migrations, applied in order, one transaction each, under a lock (two
// daemons starting together cannot both apply one). A database newer than this binary is
// refused, never "fixed".
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace sluice {

struct Migration {
  int version = 0;   // the version the database is at once it applied
  std::string what;  // one line, for `sluice migrate`
  std::string sql;   // statements, run in one transaction
};

struct SchemaReport {
  int version = 0;                   // the database's (0: empty, nothing made yet)
  int latest = 0;                    // this binary's
  std::vector<std::string> pending;  // "N: what" of each migration not applied (yet)
  std::vector<std::string> applied;  // those this call applied
};

// The states of jobs that have not ended, as an SQL list: "('queued', 'running', …)". Since
// schema version 5 the stores keep counts of ended jobs (ended_job_counts); the others, few
// (what the engines hold), are counted from the jobs' state index at each read.
const std::string& UnendedStatesSql();

// "(state='a' OR state='b' …)" for `states`: OR, not IN, so that SQLite needs no temporary
// index to test it (see schema version 5).
std::string StatesSql(const std::vector<JobState>& states);

// FailedPrecondition naming both versions when the database is newer than `latest`.
Status RefuseNewer(int version, int latest, const std::string& database);

// The database's schema as it is (nothing changed; a missing database is NotFound).
Result<SchemaReport> CheckSchema(const std::string& url, const StoreOptions& options = {});
// Applies what is missing (as opening the store does) and says what it did.
Result<SchemaReport> MigrateSchema(const std::string& url, const StoreOptions& options = {});

}  // namespace sluice
