// Commands that ask a running daemon through its HTTP API: `sluice submit`, `cancel`,
// `priority`, `promote` and `tasks`. They need the daemon (the queue lives in it); --api names it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::cli {

struct RemoteFlags {
  std::string api = "http://127.0.0.1:8080";
  std::string token;  // or SLUICE_API_TOKEN
  std::string token_file;
};

struct RemoteAnswer {
  long status = 0;  // HTTP status
  std::string body;
};
// One request to the daemon's API (`method` GET or POST). Unavailable when it cannot be reached.
Result<RemoteAnswer> Ask(const RemoteFlags& flags, const std::string& method,
                         const std::string& path, const std::string& body = "");
// The exit code an HTTP status means: 0 success, 3 not found, 2 refused, 1 otherwise.
int AnswerExitCode(long status);

// `sluice tasks add FILE|-`, `remove ID…`, `reschedule ID…`, `list [--json]`, `show ID`.
int RunTasks(const RemoteFlags& flags, const std::string& action,
             const std::vector<std::string>& args, bool json);

// `sluice submit FILE|-`: a job over POST /api/v1/jobs, its payload the file's JSON.
struct SubmitFlags {
  std::string input;  // a file, or - for stdin
  std::string kind = "kcidb";
  std::string queue;
  std::optional<int> priority;
  std::optional<int> max_attempts;
  std::string run_at;  // RFC 3339; the daemon checks it
  std::string idempotency_key;
  bool wait = false;     // until the job ends: exit 0 when it succeeded, 1 otherwise
  double timeout_s = 0;  // with wait: give up after this long (0: never)
};
int RunSubmit(const RemoteFlags& flags, const SubmitFlags& submit);
// `sluice cancel ID`: a queued or retrying job ends as cancelled.
int RunCancel(const RemoteFlags& flags, const std::string& id);

// `sluice priority NAME|ID`: prints what the daemon did; exit 3 when it knows no such thing.
int RunPriority(const RemoteFlags& flags, const std::string& what);
// `sluice promote NAME|--all`.
int RunPromote(const RemoteFlags& flags, const std::string& name, bool all);

}  // namespace sluice::cli
