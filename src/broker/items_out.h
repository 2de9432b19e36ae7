// ItemsOut: where a task's new items go besides the store (King Arthur's Redis list). The
// output keeps its own position per task, written in the same atomic step as the items, so
// each item arrives there exactly once, whatever dies in between.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

class ItemsOut {
 public:
  virtual ~ItemsOut() = default;
  // The store seq of the last item of the task (`task_id`, its store `task_seq`) that the
  // output holds; 0 when none.
  virtual Result<int64_t> Position(const std::string& task_id, int64_t task_seq) = 0;
  // Appends `items` (JSON texts, in order) and moves the position to `last_seq`: all or
  // nothing.
  virtual Status Append(const std::string& task_id, int64_t task_seq,
                        const std::vector<std::string>& items, int64_t last_seq) = 0;
  // Where it writes ("Redis host H port P db N list items"); never a password.
  virtual std::string Describe() const = 0;
};

}  // namespace sluice
