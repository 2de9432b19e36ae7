// Logging (Socorro-style): stderr and an optional rotating log file, each with its own level.
// Everything logs through spdlog's default logger once Configure() has run.
#pragma once

#include <string>

#include "core/spdlog.h"
#include "core/status.h"

namespace sluice {

struct LogOptions {
  std::string stderr_level = "info";  // trace, debug, info, warning, error, critical, off
  std::string file;                   // empty: no log file
  std::string file_level = "info";
  size_t file_max_bytes = 10 * 1024 * 1024;
  size_t file_backups = 5;
  std::string file_pattern;  // spdlog pattern of the file's lines; empty: the stderr one
};

// Sets up the default logger. InvalidArgument for an unknown level name.
Status ConfigureLogging(const LogOptions& options);

// Reopens the log file (after logrotate moved it away). Safe from any thread.
Status ReopenLogFile();

}  // namespace sluice
