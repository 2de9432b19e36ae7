// Runs a command without a shell: argv[0] looked up in PATH, stdin from /dev/null, stdout and
// stderr captured, in its own process group so a timeout kills its children too.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

struct SubprocessOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env;         // "NAME=value" added to (or replacing in) the daemon's own
  std::string cwd;                      // empty: the daemon's
  double timeout_s = 3600;              // then SIGTERM to the group, SIGKILL 2 s later
  size_t max_output_bytes = 256 << 20;  // stdout beyond it fails the run
  // Called about once a second while the command runs (e.g. to renew a lease).
  std::function<void()> tick;
};

struct SubprocessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0; }
  // "exit 128: fatal: ...", "killed by signal 9", "timed out after 5 s"
  std::string Describe(double timeout_s) const;
};

// Unavailable when the command cannot start (not found, fork failed) or its output is too big.
Result<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

}  // namespace sluice
