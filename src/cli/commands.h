// The `sluice` command line: one function per command, each returning a process exit code.
// Status → exit code conversion happens in ExitCode() and nowhere else.
#pragma once

#include <signal.h>

#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::cli {

int Main(int argc, char** argv);

// Blocks SIGINT, SIGTERM and SIGHUP in this thread and those it starts (daemons take them
// with sigtimedwait on the set returned, never in a worker).
sigset_t BlockDaemonSignals();

// 0 for OK; 2 for bad arguments or input; 3 for a missing thing; 1 otherwise. Prints the
// error to stderr.
int ExitCode(const Status& st);

// Reads an ini/toml-style config file ("key = value" lines; [sections], # and ; comments
// ignored) into "--key=value" arguments; booleans become "--key" (true) or nothing (false).
// With [spool.NAME] sections, it also adds "--spools-config=PATH".
// `origins`, when given, maps each flag made to "PATH:LINE" (for errors about it).
Result<std::vector<std::string>> ConfigFileArgs(
    const std::string& path, std::map<std::string, std::string>* origins = nullptr);
// The [spool.NAME] sections of a config file: name and flags, in file order ("dir" is
// --spool-dir, "workers" --max-workers; TOML lists become comma-separated values).
Result<std::vector<std::pair<std::string, std::vector<std::string>>>> ConfigSpoolArgs(
    const std::string& path);

}  // namespace sluice::cli
