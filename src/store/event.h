// Event: an append-only record of a job's state change or log line, with a monotonic id
// (assigned by the store at commit, in commit order). Events are what SSE clients, the job
// log and GET /api/v1/jobs/{id} show.
//
//   type "job.<state>"  data: {"job": ID, "state", "name"?, "attempts", "max_attempts",
//                        "priority"?, "run_at"?, "error"? {code, message}, "result"?}
//   type "job.log"      data: {"job": ID, "line": TEXT}
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/job.h"
#include "store/task.h"

namespace sluice {

struct Event {
  int64_t id = 0;
  int64_t ts = 0;  // wall-clock micros
  int64_t job_id = 0;
  std::string queue;
  std::string kind;
  std::string type;
  std::string data;  // JSON object text
  // The event as live readers receive it (an SSE frame), encoded once by the hub that
  // publishes it and shared by every reader; null for events read back from the store.
  std::shared_ptr<const std::string> wire;
};

inline constexpr const char* kLogEvent = "job.log";

// The type of a task's event in `status`: "task." and the status in lower case.
std::string TaskEventType(TaskStatus status);
// Every event type there is: "job.<state>" for each job state, job.log, and "task.<status>"
// for each task status (lower case), in that order.
const std::vector<std::string>& EventTypes();

// The state event of `job` as it is now.
Event StateEvent(const Job& job, int64_t ts);
// One line of a job's log.
Event LogEvent(const Job& job, int64_t ts, const std::string& line);

struct EventFilter {
  int64_t after_id = 0;  // only events with a larger id
  int64_t job_id = 0;    // 0: any job
  std::optional<std::string> queue;
  std::optional<std::string> kind;
  std::vector<std::string> types;  // empty: any type
  int limit = 1000;                // for store reads
};

// Whether `e` passes `f` (after_id and limit aside).
bool Matches(const EventFilter& f, const Event& e);

// How long events are kept: older than max_age_s, or beyond the newest max_count, go.
struct EventRetention {
  int64_t max_age_s = 7 * 24 * 3600;
  int64_t max_count = 1'000'000;
};

}  // namespace sluice
