// The exec handler (Mozilla's command_runner): a job is a command. Its input is a JSON argv
// list (the queuedir format) or {"argv": [...], "env"?: {NAME: VALUE}, "cwd"?: DIR,
// "max_time"?: SECONDS}. The command runs without a shell, stdin from /dev/null, in its own
// process group; stdout and stderr go to the job's log line by line as they come (live
// job.log events). The log starts with "Running <argv>" and ends with
// "Result: <rc>, Elapsed: <N> seconds".
//
// Exit 0 is success. A non-zero exit, a command that cannot start, or one stopped at
// max_time is a failure that is retried (the engine's retry policy); input that is not a
// command fails at once (invalid_job), and so does a command outside `allowed_commands`
// (command_not_allowed). At max_time the group gets SIGINT, then SIGTERM, then SIGKILL,
// `grace_s` apart.
//
// With `command` set (a template), the job's file is not a command but data for it (Socorro's
// JSON/dump pairs): placeholders in the template's arguments become the job's files' paths.
//
// Security: the commands come from whoever can write the spool (or submit jobs over the
// API); they run as the daemon's user, with a clean environment (core/spawn.h).
// `allowed_commands` limits them: argv[0] is resolved first (core/spawn.h ResolveCommand:
// symlinks and ".." resolved, bare names looked up in the daemon's PATH) and the canonical
// path must match a glob whose '*' does not cross a '/' (a glob without '/' matches a bare
// name as given). A job's `env` may set only the names `allowed_env` matches, and never the
// dynamic loader's (LD_*, GCONV_PATH, …): other jobs fail as env_not_allowed.
#pragma once

#include <string>
#include <vector>

#include "handlers/handler.h"

namespace sluice {

struct ExecOptions {
  double max_time_s = 0;  // default for jobs that give none; 0: no limit
  double grace_s = 10;    // between SIGINT, SIGTERM and SIGKILL
  // Output lines kept in a try's log (each a job.log event in the store): the first half as
  // they come, the last half at its end, the count of those between said in one line. Bytes
  // are bounded too (kMaxLogBytes). A command printing without end cannot fill the store.
  size_t max_log_lines = 10000;
  static constexpr size_t kMaxLogBytes = 16 << 20;
  std::vector<std::string> allowed_commands;  // globs on the resolved argv[0]; empty: any
  std::vector<std::string> allowed_env;       // globs on names a job's env may set; empty: none
  // When set, every job runs this command and its files are data: "{json}", "{dump}" (one
  // placeholder per companion suffix) and "{file}" in an argument become the paths.
  std::vector<std::string> command;
};

struct Command;

class ExecHandler : public Handler {
 public:
  explicit ExecHandler(ExecOptions options);
  std::string_view kind() const override { return "exec"; }
  const std::vector<TableSpec>& tables() const override { return tables_; }
  Status Run(const HandlerContext& ctx, HandlerOutput* out) override;

 private:
  // The command may run: its resolved program `path` is allowed, and so is its environment.
  Status Check(const Command& command, const std::string& path, HandlerOutput* out) const;
  Status RunCommand(const Command& command, const HandlerContext& ctx, HandlerOutput* out);

  ExecOptions options_;
  // allowed_commands with their fixed part made canonical as a command's path is ("/bin/*"
  // is "/usr/bin/*" where /bin links there), beside the globs as given.
  std::vector<std::string> allowed_paths_;
  std::vector<TableSpec> tables_;  // none: a command's outcome is its job's result
};

}  // namespace sluice
