// The SQLite store's schema versions: PRAGMA user_version holds the version; each migration
// runs in one BEGIN IMMEDIATE transaction (SQLite's write lock is the migration lock) that
// re-reads the version first and sets the new one last.
#pragma once

#include <vector>

#include "store/schema.h"
#include "store/sqlite/sqlite_db.h"

namespace sluice::sqlite {

// The SQLite store's migrations, oldest first. Version 1 is the layout the first releases
// made (a database from before versions were recorded is taken as version 1).
const std::vector<Migration>& StoreMigrations();

// The version recorded in `db` (0: no tables yet; a database with the tables and no version
// is 1).
Result<int> SchemaVersion(Db& db);

// Applies the migrations of `list` above the recorded version, in order. FailedPrecondition
// when the database is newer than the last of `list`. `report` says what was and is pending.
Status Migrate(Db& db, const std::vector<Migration>& list, const std::string& name,
               SchemaReport* report);

// The overview's count of jobs that ended in [?1, ?2) (SqliteStore::SummarizeJobs), kept
// on the (finished_at, state) index; its query plan is tested beside the schema. The unary
// + keeps SQLite's planner off the state index, which it took without statistics: every
// count then read every ended job (2.2 s for the overview on a million jobs).
inline constexpr const char* kEndedInRangeSql =
    "SELECT COUNT(*), COALESCE(SUM(state = 'failed'), 0) FROM jobs WHERE finished_at >= ? "
    "AND finished_at < ? AND +state IN ('succeeded', 'failed')";

// Jobs counted by `columns` ("" or "queue" or "spool") and state, the count last: ended
// jobs from ended_job_counts, the others from the jobs' state index (they are few); the plan
// is tested beside the schema.
std::string JobCountsSql(const std::string& columns);

}  // namespace sluice::sqlite
