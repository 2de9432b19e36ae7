// `sluice serve` and `sluice monitor-submissions`: run the engine on a spool until stopped.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/log.h"
#include "engine/options.h"

namespace sluice::cli {

struct ServeFlags {
  EngineOptions engine;
  std::string database = "sqlite:sluice.db";
  std::string trees_file;
  LogOptions log;
  bool no_archive = false;
  double storage_connect_timeout_s = 5;
  double storage_timeout_s = 30;
};

// Adds the flags of `serve`. With `kernelci_only`, just KernelCI's monitor_submissions flags
// (--spool-dir --max-workers --interval --trees-file) plus logging and --database.
void AddServeFlags(CLI::App* app, ServeFlags* flags, bool kernelci_only);

// Runs until SIGINT/SIGTERM (or, with --burst, until the spool is drained).
int RunServe(ServeFlags flags);

}  // namespace sluice::cli
