// Read-only and maintenance commands over the store and spool: jobs, show, stats, retry.
#pragma once

#include <optional>
#include <string>

namespace sluice::cli {

struct JobsFlags {
  std::string database = "sqlite:sluice.db";
  std::string state;
  int limit = 50;
  bool json = false;
};
int RunJobs(const JobsFlags& f);

// `what` is a job id or a file name (the newest job for that name).
int RunShow(const std::string& database, const std::string& what);

int RunStats(const std::string& database);

// Moves failed/NAME (or every failed file) back into the spool root, with its .error.json
// removed; the daemon takes it as a new job.
int RunRetry(const std::string& spool_dir, const std::string& name, bool all_failed);

}  // namespace sluice::cli
