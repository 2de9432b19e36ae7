// King Arthur's task payloads: the batch of POST /add, checked whole, and the JSON of tasks
// and runs ("jobs") as GET /tasks, /task/{id} and /job/{id} answer them.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "engine/task_scheduler.h"
#include "store/task.h"

namespace sluice::api {

// {"tasks": [{task_id, backend, backend_args, category, archive?, scheduler?}]}: every task
// checked before any is returned. *malformed: the body is not that shape at all (400); other
// errors are InvalidArgument (422) or AlreadyExists for a task id given twice (409).
Result<std::vector<Task>> ParseTaskBatch(const std::string& body, const TaskScheduler& tasks,
                                         bool* malformed);
// {"tasks": [{"task_id": ID}, …]} (/remove, /reschedule): the ids.
Result<std::vector<std::string>> ParseTaskIds(const std::string& body);

std::string TaskJson(const Task& task, const std::vector<TaskRun>& runs, bool with_results);
std::string RunJson(const TaskRun& run, double timeout_s);

}  // namespace sluice::api
