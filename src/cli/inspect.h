// Read-only and maintenance commands over the store and spool: jobs, show, stats, retry.
#pragma once

#include <optional>
#include <string>

#include "store/store.h"

namespace sluice::cli {

struct JobsFlags {
  std::string database = "sqlite:sluice.db";
  StoreOptions store;
  std::string state;
  int limit = 50;
  bool json = false;
};
int RunJobs(const JobsFlags& f);

// `what` is a job id or a file name (the newest job for that name).
int RunShow(const std::string& database, const StoreOptions& store, const std::string& what);

int RunStats(const std::string& database, const StoreOptions& store);

// Moves failed/NAME (or every failed file) back into the spool root, with its .error.json
// removed; the daemon takes it as a new job. With a database, the failed jobs (named by their
// reports) are marked retried there, out of the failure counts.
int RunRetry(const std::string& spool_dir, const std::string& name, bool all_failed,
             const std::string& database, const StoreOptions& store);

}  // namespace sluice::cli
