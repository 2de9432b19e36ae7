// RaiseDescriptorLimit: setrlimit(RLIMIT_NOFILE) to the hard limit.
#include "core/limits.h"

#include <sys/resource.h>

namespace sluice {
namespace {
uint64_t g_original = 0;
}  // namespace

uint64_t OriginalDescriptorLimit() { return g_original; }

uint64_t RaiseDescriptorLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    g_original = rl.rlim_cur;
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(rl.rlim_cur);
}

}  // namespace sluice
