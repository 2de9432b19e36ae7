// Starting a command: which program runs, with what environment, tied to the daemon's life.
//
// - The program is resolved before anything runs (ResolveCommand): a name with a '/' is made
//   canonical (symlinks and ".." resolved), a bare name is looked up in the PATH the daemon
//   started with (absolute entries only). What was checked is what runs: the child executes
//   the resolved path, never a PATH lookup of its own.
// - The environment is not the daemon's: children get a clean one (ConfigureChildren), so
//   tokens and passwords in the daemon's environment never reach a command or its output.
// - A child is in its own process group, gets SIGKILL when the thread that started it dies
//   (the daemon, killed), and is tracked by the reaper (core/reaper.h), which kills its
//   whole group if the daemon dies while it runs.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

// The variables children get from the daemon's environment unless told otherwise.
extern const char* const kChildEnvironment[];

// Sets, once at start, what every child's environment starts from: the daemon's values of
// kChildEnvironment and of `pass` (names given with --pass-env), plus SLUICE_RUN=`marker`
// (how a restarted daemon recognises the commands a dead one left running; may be empty).
// Also remembers the PATH bare command names are resolved in, and `nofile`, the descriptor
// limit children get back (the daemon raises its own).
void ConfigureChildren(const std::vector<std::string>& pass, const std::string& marker,
                       uint64_t nofile);

// The environment of a child: the configured base, with `extra` ("NAME=value") added or
// replacing.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra);

// The absolute, canonical path of the program `argv0` names (relative names with a '/' are
// taken from `cwd` when given). NotFound when there is none, or it is not an executable file.
Result<std::string> ResolveCommand(const std::string& argv0, const std::string& cwd = "");

struct SpawnRequest {
  std::string path;               // absolute, as ResolveCommand gives it
  std::vector<std::string> argv;  // argv[0] as the program should see it
  std::vector<std::string> env;   // the whole environment
  std::string cwd;                // empty: the daemon's
  int stdout_fd = -1;             // -1: /dev/null
  int stderr_fd = -1;
};

// Starts the program: stdin from /dev/null, its own process group, default signal
// dispositions, SIGKILL on the death of the calling thread, the descriptor limit the daemon
// started with. Returns its pid (also its process group id). Unavailable when it cannot
// start (with errno's reason: not found, permission, exec format).
Result<pid_t> Spawn(const SpawnRequest& request);

}  // namespace sluice
