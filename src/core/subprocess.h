// Runs a command without a shell (core/spawn.h: the program resolved first, a clean
// environment, tied to the daemon's life), stdin from /dev/null, stdout and stderr captured,
// in its own process group so a timeout kills its children too.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice {

struct SubprocessOptions {
  std::vector<std::string> argv;
  // The program to run (core/spawn.h ResolveCommand's answer); empty: argv[0] resolved here.
  std::string path;
  // "NAME=value" added to (or replacing in) the clean environment children get (core/spawn.h),
  // never the daemon's own.
  std::vector<std::string> env;
  std::string cwd;                          // empty: the daemon's
  double timeout_s = 3600;                  // then `stop_signals` to the group, `grace_s` apart
  std::vector<int> stop_signals = {15, 9};  // SIGTERM, SIGKILL
  double grace_s = 2;
  size_t max_output_bytes = 256 << 20;  // stdout beyond it fails the run
  // Called about five times a second while the command runs (e.g. to renew a lease).
  std::function<void()> tick;
  // When set: called with each complete line of output as it comes (stream 1 or 2, without
  // the newline; a last unterminated line too), instead of collecting stdout and stderr.
  std::function<void(int stream, std::string_view line)> on_line;
  // When set: called with the output's bytes as they come, before they are split in lines
  // (both streams, in the order read).
  std::function<void(std::string_view bytes)> on_output;
  // When set: stdout's bytes go to it as they come, not collected, so without a size limit
  // (stderr is still collected). Returning false ends the command: its group is killed.
  std::function<bool(std::string_view bytes)> on_stdout;
  // When set: called with each signal sent to the group at the timeout.
  std::function<void(int signal)> on_signal;
};

struct SubprocessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  double elapsed_s = 0;
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0; }
  // "exit 128: fatal: ...", "killed by signal 9", "timed out after 5 s"
  std::string Describe(double timeout_s) const;
};

// When the command itself exits, whatever it left running in its process group (holding the
// output pipes open) is killed: nothing of a finished command lingers.
// Unavailable when the command cannot start (not found, fork failed) or its output is too big.
Result<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

}  // namespace sluice
