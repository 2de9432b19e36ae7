// One daemon per SQLite database and per spool on a machine. Two daemons on one SQLite file
// would each take the other's running jobs for a crash's leftovers, and two on one spool
// would each run its files. Shared databases (PostgreSQL) have leases for that instead
// (engine/ownership.h): their daemons share a spool's lock, to stand by for it, as long as
// they share the database.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace sluice::cli {

// Locks (flock) the SQLite file of `database` (when it is one) and each spool directory:
// exclusively, or shared when `shared_id` is given (daemons on one PostgreSQL database, whose
// leases choose which of them runs a spool). Those also hold, in each spool, a shared lock
// on `.sluice-database-ID` (`shared_id`: their database's, SharedDatabaseId) and refuse a
// spool whose file of another database is held: daemons of two databases would each run its
// files. Held until the process exits. A directory that cannot be opened is skipped
// (starting on it reports the problem). FailedPrecondition naming the file when another
// process holds it.
Status LockForDaemon(const std::string& database, const std::vector<std::string>& spool_dirs,
                     const std::string& shared_id = "");

// A random id a shared database keeps for itself (in its key-value map; the first daemon to
// ask sets it): the same for every daemon on it, however each spells its connection.
Result<std::string> SharedDatabaseId(Store* store);

}  // namespace sluice::cli
