// Commands for Mozilla-style queuedirs: `sluice command-runner` and `sluice retry-dead`.
#pragma once

#include <string>
#include <vector>

#include "core/log.h"
#include "engine/retention.h"
#include "store/store.h"

namespace sluice::cli {

// command_runner.py's defaults: -j 1 -r 1 -t 0 -m 60; 60 s between its kill signals.
struct CommandRunnerFlags {
  std::string queuedir;
  std::string queuedir_flag;  // -q
  int concurrency = 1;        // -j
  int max_retries = 1;        // -r
  double retry_time_s = 0;    // -t
  double max_time_s = 60;     // -m (0: no limit)
  int verbosity = 0;          // -v: info, -vv: debug (else warning)
  double grace_s = 60;
  std::vector<std::string> allowed_commands;
  std::vector<std::string> allowed_env;
  std::vector<std::string> pass_env;
  std::string database;  // default sqlite:QUEUEDIR/sluice.db
  StoreOptions store;
  int max_json_depth = 256;
  LogOptions log;
  RetentionOptions retention;
};

// Runs until SIGINT/SIGTERM.
int RunCommandRunner(const CommandRunnerFlags& flags);
// Moves dead items back into new/ (dropping their logs); prints their names.
int RunRetryDead(const std::string& queuedir);

}  // namespace sluice::cli
