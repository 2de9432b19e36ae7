// SpoolDir: the layout of one KCIDB-style spool directory and the moves out of it.
//
//   DIR/*.json           submissions waiting (dotfiles, *.temp and other names are left alone)
//   DIR/archive/NAME     succeeded (or deleted with --no-archive)
//   DIR/failed/NAME      failed, with DIR/failed/NAME.error.json saying why
//   DIR/deferred/NAME    deferred: registered, run only when promoted or prioritised
//
// The spool and its folders are held open (core/env.h Dir) and every move is a renameat
// between descriptors: whoever can write the spool can rename, delete or replace its folders
// while the daemon runs, but cannot make a move leave them. A folder replaced by a symbolic
// link is refused (FailedPrecondition, saying so); one deleted is created again (Check). The
// spool itself must exist: it is never created, nor are its parents.
//
// Moves never replace an existing file: a name already taken in archive/ or failed/ gets the
// job id added ("x.json" -> "x.17.json"). Moves are made durable by Sync().
// Thread-safe: the folders may be reopened by Check() while other threads move files.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "spool/folders.h"

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

  // Opens the spool (NotFound, naming the first missing part of its path, when it does not
  // exist) and its archive/, failed/ and deferred/ (created when missing).
  Status Prepare();
  // Looks again at what the paths name: a folder deleted is created again, one replaced (or
  // the spool deleted and created again) is reopened. NotFound while the spool is missing;
  // FailedPrecondition while a folder is a symlink or not a directory.
  Status Check();
  // Goes up each time the spool itself is opened anew (deleted and created again).
  uint64_t generation() const { return folders_.generation(); }
  // The spool deleted and created again is locked before it is taken (Folders::LockRecreated).
  void LockRecreated(Folders::Lock mode) { folders_.LockRecreated(mode); }

  const std::string& root() const { return folders_.root(); }
  std::string PathOf(std::string_view name) const { return JoinPath(root(), name); }
  std::string ArchiveDir() const { return JoinPath(root(), "archive"); }
  std::string FailedDir() const { return JoinPath(root(), "failed"); }
  std::string DeferredDir() const { return JoinPath(root(), "deferred"); }

  // Whether `name` in the spool root is a submission to take: "*.json", not a dotfile.
  static bool IsCandidateName(std::string_view name);

  // The entries of the spool, as they are read, `batch` at a time (see
  // Env::ListDirAtInBatches), and of deferred/; lstat of a name in them.
  Status ListInBatches(size_t batch, const std::function<bool(std::vector<DirEntry>*)>& each);
  Result<std::vector<DirEntry>> ListDeferred();
  Result<FileInfo> Stat(std::string_view name);
  Result<FileInfo> StatDeferred(std::string_view name);

  // Moves NAME to archive/ (or where SaveDirs says). Returns the name it got there ("" when
  // deleted). NotFound only when NAME itself is gone.
  Result<std::string> Archive(std::string_view name, int64_t job_id);
  // Writes failed/NAME.error.json (durably) with `report`, then moves NAME to failed/.
  // Returns the name it got there. NotFound only when NAME itself is gone.
  Result<std::string> Fail(std::string_view name, int64_t job_id, std::string_view report);
  // Moves failed/FAILED_NAME back into the spool as NAME and drops its error report. Its
  // modification time is renewed, so recovery takes it for a new file, not for its failed
  // job's file left unmoved by a crash. AlreadyExists when NAME is in the spool already.
  Status Restore(std::string_view failed_name, std::string_view name);
  // The name job `job_id`'s file NAME has in failed/ (with a dated folder first, "20261123/x.json",
  // under save_failed_to), when it is there (NotFound otherwise).
  Result<std::string> FailedNameOf(std::string_view name, int64_t job_id);
  // The job whose failure the report of failed/FAILED_NAME (dated as FailedNameOf gives it)
  // records; NotFound when there is no report or it names no job.
  Result<int64_t> ReportedJobOf(std::string_view failed_name);
  // Moves deferred/NAME into the spool (AlreadyExists when the spool has that name).
  Status Undefer(std::string_view name);
  // Deletes NAME from the spool.
  Status Delete(std::string_view name);
  // The name of NAME's error report in failed/: NAME.error.json, or, when that would be
  // longer than a file name may be, NAME cut (on a UTF-8 boundary) with a digest of it.
  static std::string ReportNameOf(std::string_view name);
  // Companions (Socorro's JSON/dump pairs): "x.json" with ".dump" -> "x.dump".
  static std::string CompanionOf(std::string_view primary, std::string_view suffix);
  // A companion's suffix must name a file beside its job's in the spool: not empty, no '/'
  // (x + "/../y" would be a file outside it), no NUL or other control character, and not
  // ending in ".json" (the companion would be a job file itself). InvalidArgument says which.
  static Status CheckCompanionSuffix(std::string_view suffix);
  // Moves the companion NAME of job `job_id` to archive/ (`failed` false) or failed/ (true,
  // beside its primary's report). Returns the name it got there.
  Result<std::string> MoveCompanion(std::string_view name, int64_t job_id, bool failed);
  // Makes every move and deletion so far durable: fsync of the spool and the folders in use.
  // A caller that knows nothing went to archive/ (or to failed/) leaves that folder out: an
  // fsync of an unchanged directory still costs the disk a cache flush.
  struct Moved {
    bool archived = true;
    bool failed = true;
  };
  Status Sync(Moved moved);
  Status Sync();

 private:
  using DirPtr = Folders::DirPtr;
  enum Sub { kArchive = 0, kFailed = 1, kDeferred = 2 };
  static std::string SuffixedName(std::string_view name, int64_t job_id);
  // The folder finished files go to now (a dated one when SaveDirs names a directory),
  // created when missing; null when they are deleted.
  Result<DirPtr> Destination(bool failed);
  // Runs `move(root, dest)`. When it finds no file although NAME is still in the spool, the
  // destination went away: the folders are checked (recreated) and it runs once more.
  Result<std::string> MoveOut(
      std::string_view name, bool failed,
      const std::function<Result<std::string>(const Dir& root, const Dir& dest)>& move);
  // Moves NAME into `dest`, adding the job id on a clash. The name it got there.
  Result<std::string> MoveInto(const Dir& root, std::string_view name, const Dir& dest,
                               int64_t job_id);

  Env* env_;
  Folders folders_;  // the spool, archive/, failed/, deferred/
  SaveDirs save_;
  std::mutex mu_;  // guards dated_
  // Dated folders of save_* in use (the newest few, synced by Sync), by their path.
  std::vector<std::pair<std::string, DirPtr>> dated_;
};

}  // namespace sluice
