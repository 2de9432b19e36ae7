// Reaper: a small helper process that kills the process groups of running commands when the
// daemon dies without stopping them (kill -9, a crash). A parent-death signal reaches only the
// command itself; what it started (a shell's children) would run on, and a restarted daemon
// would start the same job beside them.
//
// The helper is forked at start and reads, from a pipe, which groups are running. When the
// pipe ends (the daemon is gone, however it went) it sends SIGKILL to each group still
// running, and exits. It ignores SIGINT, SIGTERM and SIGHUP (a Ctrl-C reaches it with the
// daemon) and holds no other descriptor of the daemon's (no socket, no database).
// Thread-safe; Track and Untrack are no-ops until Start.
#pragma once

#include <sys/types.h>

#include "core/status.h"

namespace sluice {

class Reaper {
 public:
  // Forks the helper (once per process; later calls do nothing).
  static Status Start();
  // Process group `pgid` runs now / has ended (its leader not reaped yet, so the id is not
  // reused in between).
  static void Track(pid_t pgid);
  static void Untrack(pid_t pgid);
  // The helper's pid (0 before Start), for tests.
  static pid_t pid();
  // The pipe to the helper (-1 before Start): a child about to exec writes its own Track
  // record there (kTrack, then the pid as int32 in host order), so the group is known to the
  // helper before the command runs, however soon the daemon dies.
  static int fd();
  static constexpr unsigned char kTrack = 'T';
};

}  // namespace sluice
