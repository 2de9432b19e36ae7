// SpoolDir: the layout of one KCIDB-style spool directory and the moves out of it.
//
//   DIR/*.json           submissions waiting (dotfiles, *.temp and other names are left alone)
//   DIR/archive/NAME     succeeded (or deleted with --no-archive)
//   DIR/failed/NAME      failed, with DIR/failed/NAME.error.json saying why
//   DIR/deferred/NAME    deferred: registered, run only when promoted or prioritised
//
// Moves never replace an existing file: a name already taken in archive/ or failed/ gets the
// job id added ("x.json" -> "x.17.json"). Moves are made durable by Sync().
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/status.h"

namespace sluice {

// Where finished files go (Socorro's save_successful_to / save_failed_to). Unset: DIR/archive
// and DIR/failed. An empty string: they are deleted. A directory: a dated subfolder of it
// (YYYYMMDD, UTC), created as needed; it must be on the spool's filesystem (files are renamed).
struct SaveDirs {
  std::optional<std::string> successful;
  std::optional<std::string> failed;
};

class SpoolDir {
 public:
  SpoolDir(Env* env, std::string root, SaveDirs save = {});

  // Creates the spool, archive/, failed/ and deferred/ when missing.
  Status Prepare();

  const std::string& root() const { return root_; }
  std::string PathOf(std::string_view name) const { return JoinPath(root_, name); }
  std::string ArchiveDir() const { return JoinPath(root_, "archive"); }
  std::string FailedDir() const { return JoinPath(root_, "failed"); }
  std::string DeferredDir() const { return JoinPath(root_, "deferred"); }
  std::string DeferredPathOf(std::string_view name) const { return JoinPath(DeferredDir(), name); }

  // Whether `name` in the spool root is a submission to take: "*.json", not a dotfile.
  static bool IsCandidateName(std::string_view name);

  // Moves NAME to archive/ (or where SaveDirs says). Returns the name it got there ("" when
  // deleted).
  Result<std::string> Archive(std::string_view name, int64_t job_id);
  // Writes failed/NAME.error.json (durably) with `report`, then moves NAME to failed/.
  // Returns the name it got there.
  Result<std::string> Fail(std::string_view name, int64_t job_id, std::string_view report);
  // Moves failed/FAILED_NAME back into the spool as NAME and drops its error report. Its
  // modification time is renewed, so recovery takes it for a new file, not for its failed
  // job's file left unmoved by a crash. AlreadyExists when NAME is in the spool already.
  Status Restore(std::string_view failed_name, std::string_view name);
  // The name job `job_id`'s file NAME has in failed/ (with a dated folder first, "20261123/x.json",
  // under save_failed_to), when it is there (NotFound otherwise).
  Result<std::string> FailedNameOf(std::string_view name, int64_t job_id);
  // Deletes NAME from the spool.
  Status Delete(std::string_view name);
  // Companions (Socorro's JSON/dump pairs): "x.json" with ".dump" -> "x.dump".
  static std::string CompanionOf(std::string_view primary, std::string_view suffix);
  // Moves the companion NAME of job `job_id` to archive/ (`failed` false) or failed/ (true,
  // beside its primary's report). Returns the name it got there.
  Result<std::string> MoveCompanion(std::string_view name, int64_t job_id, bool failed);
  // Makes every move and deletion so far durable: fsync of the spool, archive/ and failed/.
  Status Sync();

 private:
  static std::string SuffixedName(std::string_view name, int64_t job_id);
  // The directory finished files go to now (a dated one when SaveDirs names a directory),
  // created when missing; nullopt when they are deleted.
  Result<std::optional<std::string>> Destination(bool failed);
  // Moves NAME into `dir`, adding the job id on a clash. The name it got there.
  Result<std::string> MoveInto(std::string_view name, const std::string& dir, int64_t job_id);

  Env* env_;
  std::string root_;
  SaveDirs save_;
  std::mutex mu_;                     // guards touched_ (mover and discovery threads)
  std::vector<std::string> touched_;  // dated directories in use, synced by Sync
};

}  // namespace sluice
