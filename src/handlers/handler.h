// Handler: the code for one kind of job. It sees a narrow context, never the engine.
//
// Run() returns OK with the rows to store, or a Status whose code says whether a retry can
// help (Status::IsTransient(): database busy, upload 5xx, ENOSPC) or not (bad JSON, schema),
// plus a stable error code and details a person can act on.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/env.h"
#include "core/status.h"
#include "store/objects.h"

namespace sluice {

struct HandlerContext {
  std::string path;  // the job's file, or
  // The job's files by role, for command templates: "json" (the job's file) and one per
  // companion ("dump" for ".dump"). Empty for a job sent over HTTP.
  std::map<std::string, std::string> files;
  const std::string* payload = nullptr;  // its input, for a job sent over HTTP
  uint64_t max_file_bytes = 0;
  Env* env = nullptr;
  Clock* clock = nullptr;
  const std::atomic<bool>* cancelled = nullptr;
  // Log lines while the job runs: stored and sent to event readers at once (job.log events).
  // Lines given here are not repeated in HandlerOutput::log. May be empty (then use that).
  std::function<void(std::vector<std::string> lines)> live_log;
  // The command's log as Mozilla's command_runner writes it (a queuedir's logs/): "Running
  // ['argv']", the output as it came, "\nResult: RC, Elapsed: N seconds". May be empty.
  std::function<void(std::string_view text)> raw_log;
  // "Still working": renews the job's lease. A handler that runs long calls it as it makes
  // progress; a job whose worker is silent past the lease is given to another worker.
  std::function<void()> heartbeat;
  // The job, and the epoch of the claim it runs under (0: not claimed through the store, so
  // not fenced): a handler whose own writes must follow the job's fence uses them.
  int64_t job_id = 0;
  int64_t claim_epoch = 0;
};

struct HandlerOutput {
  std::vector<ObjectRow> rows;   // to commit with the job's success, in one transaction
  std::string summary;           // JSON object text stored as the job's result
  std::vector<std::string> log;  // lines for the job's log (on success and on failure)
  uint64_t objects = 0;          // for progress lines
  uint64_t bytes = 0;
  // On failure: a stable code ("invalid_json", "schema_violation", …) and a JSON object text
  // with what else is known (the schema path that broke, …).
  std::string error_code;
  std::string error_detail;
};

// The error code of a job file that cannot be read: "unreadable_file" (not a regular file,
// too large), "file_vanished" (gone from the spool), "read_error" (I/O; passing).
std::string FileErrorCode(const Status& st);

// The job's input: its payload, or its file read whole (error code as FileErrorCode).
Status ReadJobInput(const HandlerContext& ctx, std::string* text, HandlerOutput* out);

class Handler {
 public:
  virtual ~Handler() = default;
  virtual std::string_view kind() const = 0;
  // The object tables this handler's rows go to; ObjectRow::table indexes this list.
  virtual const std::vector<TableSpec>& tables() const = 0;
  // Processes one job. Thread-safe: called from many workers at once.
  virtual Status Run(const HandlerContext& ctx, HandlerOutput* out) = 0;
  // Reloads configuration files (SIGHUP). Keeps the old configuration on error.
  virtual Status Reload() { return Status::Ok(); }
};

}  // namespace sluice
