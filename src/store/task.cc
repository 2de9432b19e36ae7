// Names of task and run states.
#include "store/task.h"

namespace sluice {
namespace {

constexpr const char* kTaskNames[] = {"NEW",     "SCHEDULED", "ENQUEUED",
                                      "RUNNING", "COMPLETED", "FAILED"};
constexpr const char* kRunNames[] = {"queued", "started", "finished", "failed", "canceled"};

template <typename E, size_t N>
Result<E> ParseName(const char* const (&names)[N], std::string_view name, const char* what) {
  for (size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<E>(i);
  }
  return Status::InvalidArgument(std::string("unknown ") + what + " '" + std::string(name) + "'");
}

}  // namespace

const char* TaskStatusName(TaskStatus s) { return kTaskNames[static_cast<int>(s)]; }
Result<TaskStatus> ParseTaskStatus(std::string_view name) {
  return ParseName<TaskStatus>(kTaskNames, name, "task status");
}
const char* RunStatusName(RunStatus s) { return kRunNames[static_cast<int>(s)]; }
Result<RunStatus> ParseRunStatus(std::string_view name) {
  return ParseName<RunStatus>(kRunNames, name, "run status");
}

}  // namespace sluice
