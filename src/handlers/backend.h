// Backend: what a recurring task's run does (King Arthur's Perceval backends): fetch the items
// newer than the task's cursor.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/task.h"

namespace sluice {

struct FetchRequest {
  std::string task_id;
  std::string category;
  std::string args;            // JSON object: the task's backend_args, cursor applied
  bool from_archive = false;   // read what is archived locally; do not reach the origin
  std::function<void()> tick;  // call at least every few seconds while working (lease)
  std::function<void(const std::string&)> log;  // a line for the run's log
  // When set: items are handed to it in batches as they are read (oldest first), each stored
  // before more is read, so a long history is never held whole; Fetch returns the rest. An
  // error from it ends the fetch with that error.
  std::function<Status(std::vector<TaskItem>*)> save;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual std::vector<std::string> categories() const = 0;
  // Checks a task's backend_args (a JSON object, parsed); InvalidArgument naming the field.
  virtual Status Validate(const std::string& args) const = 0;
  // The items of one run. Each item's uuid is stable, so runs that overlap do not duplicate.
  virtual Result<std::vector<TaskItem>> Fetch(const FetchRequest& request) = 0;
};

}  // namespace sluice
