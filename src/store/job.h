// Job: one unit of work, and its states. The enum matches the lifecycle in DESIGN.md:
//
//   queued ──claim──► running ──ok──► succeeded ─► file to archive/ (or deleted)
//     ▲                  ├─transient error, attempts left─► retrying (run_at = now + backoff)
//     └──────────────────┤                                        │
//                        │   ◄──────────── run_at reached ────────┘
//                        ├─permanent error or attempts used─► failed ─► file to failed/ + reason
//                        └─daemon died while running─► queued on restart (interruption
//                          counted; too many fail the job as "interrupted": a poison pill)
//   failed ─(sluice retry)─► queued
//   deferred (a file in the spool's deferred/ folder) ─(sluice promote | priority)─► queued
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

enum class JobState { kQueued, kRunning, kRetrying, kSucceeded, kFailed, kCancelled, kDeferred };
inline constexpr JobState kAllJobStates[] = {
    JobState::kQueued, JobState::kRunning,   JobState::kRetrying, JobState::kSucceeded,
    JobState::kFailed, JobState::kCancelled, JobState::kDeferred};

std::string_view StateName(JobState state);
Result<JobState> ParseState(std::string_view name);
inline bool IsFinal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

// What identifies a spool file on disk, so a file seen again after a crash is recognised.
struct FileIdentity {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  // Creation time (FileInfo::btime_ns) when known, else 0. Kept in memory only, not stored: a
  // job read back from the store has 0, and is told apart by inode alone.
  int64_t btime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
  // Another file under the name: another inode, or the same inode number given to a new file
  // after the old one was deleted (told by creation times, when both are known).
  bool OtherFileThan(const FileIdentity& o) const {
    return ino != o.ino || (btime_ns != 0 && o.btime_ns != 0 && btime_ns != o.btime_ns);
  }
  // The same file as `o` for a spool, as it was: inode, size and modification time. Not the
  // device number, which a reboot or a remount may change for the same filesystem (a spool's
  // files are all on one).
  bool SameFileAs(const FileIdentity& o) const {
    return !OtherFileThan(o) && size == o.size && mtime_ns == o.mtime_ns;
  }
};

struct JobError {
  std::string code;     // stable, machine-readable: "invalid_json", "schema_violation", …
  std::string message;  // what a person can act on
  std::string detail;   // JSON object text with what else is known (schema path, …), or empty
};

struct Job {
  int64_t id = 0;
  std::string queue = "default";
  std::string kind;
  std::string spool;    // the spool directory the file came from; empty for a job sent over HTTP
  std::string name;     // the file name inside the spool
  std::string payload;  // the job's input when it came over HTTP (else the file)
  std::string idempotency_key;  // optional, unique: the same key submits the same job once
  FileIdentity file;
  JobState state = JobState::kQueued;
  int priority = 0;
  int attempts = 0;  // tries that ran to an outcome (or are running now)
  int max_attempts = 5;
  int interruptions = 0;  // tries cut short by the daemon dying (kill -9, crash, power loss)
  int64_t run_at = 0;     // wall-clock micros; when a retrying job may run again
  int64_t created_at = 0;
  int64_t last_tried = 0;
  int64_t finished_at = 0;
  // A spool file's failed or cancelled job whose file was put back into the spool (where it
  // runs as a new job): when, else 0. It stays in the history, out of the failure counts.
  int64_t retried_at = 0;
  JobError error;
  std::string result;  // JSON object text summarising what the handler did
  // The claim that holds the job (Store::ClaimJobs): each claim bumps the epoch; writes that
  // carry an older one are dropped (fencing). The owner's lease runs until lease_until.
  int64_t lease_epoch = 0;
  std::string lease_owner;
  int64_t lease_until = 0;  // wall-clock micros
};

}  // namespace sluice
