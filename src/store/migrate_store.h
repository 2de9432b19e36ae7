// Moving a SQLite store to PostgreSQL (`sluice migrate-store`): jobs (with payloads), events
// (ids kept), tasks, task runs, items, the key-value map, and the object rows (the KCIDB
// tables). Sluice's tables are copied in chunks in key order, each chunk committed together
// with the last key copied (in the target's key-value map), so an interrupted copy resumes
// where it stopped and copies nothing twice; object rows are upserted (again harmless).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/objects.h"
#include "store/store.h"

namespace sluice {

struct MigrateStoreOptions {
  std::string from;  // sqlite:PATH
  std::string to;    // a PostgreSQL URL or key=value string
  StoreOptions to_options;
  bool append = false;                   // a target holding data of its own is fine
  std::vector<TableSpec> object_tables;  // the handlers' (KCIDB) tables, when the source has them
  int chunk = 2000;
};

struct TableCount {
  std::string table;
  int64_t source = 0;
  int64_t target = 0;  // rows of the table in the target afterwards
};

// Copies; `progress` gets a line now and then. The counts of every table, source and target.
// FailedPrecondition for a target that holds data (without `append`, and not a copy of this
// source being resumed).
Result<std::vector<TableCount>> MigrateStore(
    const MigrateStoreOptions& options, const std::function<void(const std::string&)>& progress);

}  // namespace sluice
