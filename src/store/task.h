// Recurring tasks (King Arthur's): a Task is a fetch template; each run of it is a TaskRun
// (Arthur's "job"); runs produce TaskItems (one per commit for the git backend).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

// Arthur's task life cycle: NEW → SCHEDULED → ENQUEUED → RUNNING → SCHEDULED again after a
// success (or a failure that will be retried), COMPLETED (max_age runs, or an archive fetch)
// or FAILED (max_retries used up).
enum class TaskStatus { kNew, kScheduled, kEnqueued, kRunning, kCompleted, kFailed };
const char* TaskStatusName(TaskStatus s);
Result<TaskStatus> ParseTaskStatus(std::string_view name);

struct TaskSchedule {
  int64_t delay_s = 10;  // from the end of a run to the next one
  int max_retries = 3;   // failed runs retried in a row before the task FAILS
  int max_age = 0;       // runs before the task COMPLETES; 0: forever
  std::string queue;     // empty: archive, create, retry or update, chosen as Arthur does
};

struct Task {
  int64_t seq = 0;  // the store's number for this task (a task added again gets a new one)
  std::string task_id;
  std::string backend;
  std::string category;
  std::string backend_args = "{}";  // JSON object as given (from_date normalised)
  std::string archive;              // JSON object as given, or empty
  bool fetch_from_archive = false;
  TaskSchedule schedule;
  bool schedule_given = true;  // false: no "scheduler" (or an empty one), Arthur's null config
  TaskStatus status = TaskStatus::kNew;
  int age = 0;              // runs enqueued so far
  int num_failures = 0;     // failed runs in a row
  int64_t created_on = 0;   // wall micros
  int64_t next_run_at = 0;  // wall micros, while SCHEDULED
  // The cursor: where the next run starts (advanced by each successful run).
  std::string next_from_date;  // RFC 3339, empty before the first item
  std::optional<int64_t> next_offset;
  std::string current_job;  // the run queued or running, if any
};

// The states of a run, named as Arthur's (RQ's) job statuses.
enum class RunStatus { kQueued, kStarted, kFinished, kFailed, kCanceled };
const char* RunStatusName(RunStatus s);
Result<RunStatus> ParseRunStatus(std::string_view name);

struct TaskRun {
  std::string job_id;
  int64_t task_seq = 0;
  std::string task_id;
  int job_number = 0;  // 1 for the task's first run
  std::string queue;
  RunStatus status = RunStatus::kQueued;
  int64_t created_at = 0;  // wall micros; 0: not yet
  int64_t started_at = 0;
  int64_t ended_at = 0;
  int64_t lease_until = 0;  // while started: the worker renews it; past it, the run is retried
  std::string args;         // JSON: the backend arguments this run used (cursor applied)
  std::string result;       // JSON summary once it ends, or empty
  std::string error;
  std::string log;  // lines, '\n'-terminated
};

struct TaskItem {
  std::string uuid;        // unique within the task (a commit hash for git)
  int64_t updated_on = 0;  // wall micros
  std::string data;        // the item, JSON
  int64_t seq = 0;         // set by the store when it was new; 0 when already stored
};

}  // namespace sluice
