// One daemon per SQLite database and per spool on a machine. Two daemons on one SQLite file
// would each take the other's running jobs for a crash's leftovers, and two on one spool
// would each run its files. Shared databases (PostgreSQL) have leases for that instead
// (engine/ownership.h): their daemons share a spool's lock, to stand by for it.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::cli {

// Locks (flock) the SQLite file of `database` (when it is one) and each spool directory:
// exclusively, or shared when `take_turns` (daemons on one PostgreSQL database, whose leases
// choose which of them runs a spool). Held until the process exits. A directory
// that cannot be opened is skipped (starting on it reports the problem). FailedPrecondition
// naming the file when another process holds it.
Status LockForDaemon(const std::string& database, const std::vector<std::string>& spool_dirs,
                     bool take_turns);

}  // namespace sluice::cli
