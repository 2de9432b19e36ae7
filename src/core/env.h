// Env: every filesystem call Sluice makes goes through this interface, so tests can inject
// faults (ENOSPC, EIO on fsync, a rename that fails) with EnvWrapper (LevelDB's pattern).
//
// Thread safety: implementations must be safe to call from many threads at once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice {

enum class FileType { kRegular, kDirectory, kSymlink, kOther };

struct FileInfo {
  FileType type = FileType::kOther;
  uint64_t size = 0;
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t mtime_ns = 0;  // modification time, nanoseconds since the epoch
};

struct DirEntry {
  std::string name;
  FileType type = FileType::kOther;  // from d_type; kOther when the filesystem does not say
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX implementation. Never deleted.
  static Env* Default();

  // Information about `path` itself (a symlink is reported as kSymlink, not followed).
  // NotFound when it does not exist.
  virtual Result<FileInfo> Stat(const std::string& path) = 0;

  // The entries of directory `path` except "." and "..", in no particular order.
  virtual Result<std::vector<DirEntry>> ListDir(const std::string& path) = 0;

  // Reads the whole regular file at `path` into *out. Never follows a symlink and never blocks
  // on a FIFO: anything but a regular file is InvalidArgument. A file larger than `max_bytes`
  // is InvalidArgument and *out is left empty. On success *info describes the file read.
  virtual Status ReadFile(const std::string& path, uint64_t max_bytes, std::string* out,
                          FileInfo* info) = 0;

  // True when some process still has `path` open for writing (a writer that has not finished).
  // Uses a read lease; where leases are not allowed (another owner, an odd filesystem) it
  // answers Unavailable and the caller falls back to waiting for the file to be quiet.
  virtual Result<bool> IsOpenForWriting(const std::string& path) = 0;

  // Writes `data` to `path` with the crash semantics of write()+fsync()+rename()+fsync(dir):
  // after OK, the file is whole and durable; after a crash, it is either absent or whole.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data) = 0;

  // Writes `data` to `path` (created or truncated) without fsync: for data that may be lost
  // in a crash, such as generated demo input.
  virtual Status WriteFile(const std::string& path, std::string_view data) = 0;

  // rename(2). `to` is replaced if it exists. Not durable until SyncDir of both parents.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;

  // Like Rename, but fails with AlreadyExists instead of replacing `to` (renameat2 NOREPLACE).
  virtual Status RenameNoReplace(const std::string& from, const std::string& to) = 0;

  // Sets the modification time of `path` to now.
  virtual Status Touch(const std::string& path) = 0;

  // Sets the modification time of `path` to `micros` (wall clock; may be in the future).
  virtual Status SetModifiedTime(const std::string& path, int64_t micros) = 0;

  // Appends `data` to `path` (created when missing), without fsync: for logs.
  virtual Status AppendFile(const std::string& path, std::string_view data) = 0;

  // unlink(2). NotFound if absent.
  virtual Status RemoveFile(const std::string& path) = 0;

  // mkdir -p. OK if it already exists as a directory.
  virtual Status CreateDirs(const std::string& path) = 0;

  // fsync of a directory, making renames and creations inside it durable.
  virtual Status SyncDir(const std::string& path) = 0;
};

// Forwards every call to a target Env; tests override only what they need.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Result<FileInfo> Stat(const std::string& p) override { return target_->Stat(p); }
  Result<std::vector<DirEntry>> ListDir(const std::string& p) override {
    return target_->ListDir(p);
  }
  Status ReadFile(const std::string& p, uint64_t max, std::string* out, FileInfo* i) override {
    return target_->ReadFile(p, max, out, i);
  }
  Result<bool> IsOpenForWriting(const std::string& p) override {
    return target_->IsOpenForWriting(p);
  }
  Status WriteFileAtomic(const std::string& p, std::string_view d) override {
    return target_->WriteFileAtomic(p, d);
  }
  Status WriteFile(const std::string& p, std::string_view d) override {
    return target_->WriteFile(p, d);
  }
  Status Rename(const std::string& f, const std::string& t) override {
    return target_->Rename(f, t);
  }
  Status RenameNoReplace(const std::string& f, const std::string& t) override {
    return target_->RenameNoReplace(f, t);
  }
  Status Touch(const std::string& p) override { return target_->Touch(p); }
  Status SetModifiedTime(const std::string& p, int64_t micros) override {
    return target_->SetModifiedTime(p, micros);
  }
  Status AppendFile(const std::string& p, std::string_view d) override {
    return target_->AppendFile(p, d);
  }
  Status RemoveFile(const std::string& p) override { return target_->RemoveFile(p); }
  Status CreateDirs(const std::string& p) override { return target_->CreateDirs(p); }
  Status SyncDir(const std::string& p) override { return target_->SyncDir(p); }

 private:
  Env* target_;
};

// Joins two path parts with exactly one '/'.
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace sluice
