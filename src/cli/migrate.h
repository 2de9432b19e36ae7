// Schema and store moves: `sluice migrate` (the database's schema version, brought up to
// date) and, later, moving a store's contents to another.
#pragma once

#include <string>

#include "store/store.h"

namespace sluice::cli {

// Applies the missing migrations (or, with `check`, only says which are missing: exit 1 when
// some are, 0 when none, 2 for a database newer than this sluice).
int RunMigrate(const std::string& database, const StoreOptions& store, bool check);

// Copies a SQLite store into a PostgreSQL one (see store/migrate_store.h), printing progress
// and the count of each table on both sides; exit 1 when a count does not match.
int RunMigrateStore(const std::string& from, const std::string& to, const StoreOptions& store,
                    bool append, int chunk);

}  // namespace sluice::cli
