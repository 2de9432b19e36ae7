// Commands a dead daemon left running. Every command carries SLUICE_RUN=<marker> in its
// environment (core/spawn.h), a marker new at each start of a daemon; a restarted daemon
// finds what carries its predecessor's marker in /proc and kills it before it runs any job,
// so no job ever runs twice at once.
//
// A command that empties its environment cannot be recognised this way (the reaper and the
// parent-death signal still end it when the daemon dies: core/reaper.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

// A new random marker (32 hex digits).
std::string NewRunMarker();
// This boot's id (/proc/sys/kernel/random/boot_id): processes of another boot are gone.
std::string BootId();
// When process `pid` started (clock ticks since boot), 0 when there is no such process.
uint64_t ProcessStartTicks(pid_t pid);

// The processes whose environment holds SLUICE_RUN=`marker` (those this user may read).
std::vector<pid_t> FindMarked(const std::string& marker);

// Kills every process carrying `marker`, with its process group, and waits up to `wait_s`
// for them to be gone. How many there were; FailedPrecondition naming those left (a process
// stuck in the kernel) when some outlive the wait.
Result<int> KillMarked(const std::string& marker, double wait_s);

}  // namespace sluice
