// The PostgreSQL store's schema versions (see pg_schema.cc).
#pragma once

#include <string>
#include <vector>

#include "store/postgres/pg_conn.h"
#include "store/schema.h"

namespace sluice::pg {

// "name" quoted as an SQL identifier.
std::string QuoteIdent(const std::string& name);

// The store's migrations, oldest first; "@S" in their SQL stands for the quoted schema.
const std::vector<Migration>& StoreMigrations();

// The version recorded in `schema` (0: nothing there yet) and what is missing.
Result<SchemaReport> CheckSchema(Conn& c, const std::string& schema);

// Creates `schema` when missing and applies the migrations of `list` above its version, under
// an advisory lock, one transaction each. FailedPrecondition for a newer schema.
Status Migrate(Conn& c, const std::string& schema, const std::vector<Migration>& list,
               SchemaReport* report);

}  // namespace sluice::pg
