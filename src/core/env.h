// Env: every filesystem call Sluice makes goes through this interface, so tests can inject
// faults (ENOSPC, EIO on fsync, a rename that fails) with EnvWrapper (LevelDB's pattern).
//
// Thread safety: implementations must be safe to call from many threads at once.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "core/fd.h"
#include "core/status.h"

namespace sluice {

enum class FileType { kRegular, kDirectory, kSymlink, kOther };

struct FileInfo {
  FileType type = FileType::kOther;
  uint64_t size = 0;
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t mtime_ns = 0;  // modification time, nanoseconds since the epoch
  // Creation time where the call and the filesystem give it (StatAt: statx on ext4, XFS,
  // Btrfs, tmpfs), else 0. Tells a file deleted and created again from the same file: the
  // new one often gets the freed inode number.
  int64_t btime_ns = 0;
};

struct DirEntry {
  std::string name;
  FileType type = FileType::kOther;  // from d_type; kOther when the filesystem does not say
};

// A directory held open by descriptor (LevelDB keeps its lock file so). Names are resolved
// relative to it and never through a symbolic link: a folder renamed, deleted or replaced by a
// link after it was opened cannot send what is done in it anywhere else. Move-only.
class Dir {
 public:
  Dir() = default;
  Dir(UniqueFd fd, std::string path, uint64_t dev, uint64_t ino)
      : fd_(std::move(fd)), path_(std::move(path)), dev_(dev), ino_(ino) {}
  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  // The path it was opened by, for messages (and for fault injection by path).
  const std::string& path() const { return path_; }
  std::string PathOf(std::string_view name) const;
  // Its identity when opened: compared with what a path names now, to see it was replaced.
  uint64_t dev() const { return dev_; }
  uint64_t ino() const { return ino_; }

 private:
  UniqueFd fd_;
  std::string path_;
  uint64_t dev_ = 0;
  uint64_t ino_ = 0;
};

// Reads a file the operator names (a config file, a secret, a trees file): symbolic links are
// followed (secrets are links on Kubernetes), but only a regular file of at most `max_bytes`
// is read, never a FIFO or a device (which would block or never end). InvalidArgument
// otherwise, naming the file.
Status ReadConfigFile(const std::string& path, uint64_t max_bytes, std::string* out);

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

  // --- Directories held open (Dir). Every name below is one path component. ---

  // Opens the directory `path` (symlinks on the way are followed: the path is the
  // operator's). NotFound when it does not exist, FailedPrecondition when it is no directory.
  virtual Result<Dir> OpenDir(const std::string& path) = 0;
  // Opens `name` in `parent` (creating it first when `create`), never through a symlink: a
  // symlink there is FailedPrecondition, saying so.
  virtual Result<Dir> OpenSubdir(const Dir& parent, std::string_view name, bool create) = 0;
  // lstat of `name` in `dir` ("." for the directory itself).
  virtual Result<FileInfo> StatAt(const Dir& dir, std::string_view name) = 0;
  virtual Result<std::vector<DirEntry>> ListDirAt(const Dir& dir) = 0;
  // Lists `dir` as it reads it, up to `batch` entries per call of `each` (which may take
  // them), stopping early when `each` returns false: a directory of millions is never held
  // whole, and its first entries are used before its last are read.
  virtual Status ListDirAtInBatches(const Dir& dir, size_t batch,
                                    const std::function<bool(std::vector<DirEntry>*)>& each) {
    auto all = ListDirAt(dir);
    if (!all.ok()) return all.status();
    batch = std::max<size_t>(1, batch);
    for (size_t at = 0; at < all->size(); at += batch) {
      std::vector<DirEntry> part(
          std::make_move_iterator(all->begin() + at),
          std::make_move_iterator(all->begin() + std::min(all->size(), at + batch)));
      if (!each(&part)) break;
    }
    return Status::Ok();
  }
  // renameat2: `from_name` in `from` becomes `to_name` in `to`; with `replace` false an
  // existing `to_name` is AlreadyExists. NotFound when `from_name` is missing, or when `to`
  // was deleted meanwhile (the caller tells the two apart with StatAt).
  virtual Status RenameAt(const Dir& from, std::string_view from_name, const Dir& to,
                          std::string_view to_name, bool replace) = 0;
  virtual Status RemoveAt(const Dir& dir, std::string_view name) = 0;
  // WriteFileAtomic inside `dir`: whole and durable after OK, absent or whole after a crash.
  virtual Status WriteFileAtomicAt(const Dir& dir, std::string_view name,
                                   std::string_view data) = 0;
  // Appends to `name` in `dir` (created when missing; a symlink is refused), without fsync.
  virtual Status AppendFileAt(const Dir& dir, std::string_view name, std::string_view data) = 0;
  // Sets the modification time of `name` in `dir` (never through a symlink); kNowMicros: now.
  static constexpr int64_t kNowMicros = INT64_MIN;
  virtual Status SetModifiedTimeAt(const Dir& dir, std::string_view name, int64_t micros) = 0;
  virtual Status SyncDir(const Dir& dir) = 0;
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
  Result<Dir> OpenDir(const std::string& p) override { return target_->OpenDir(p); }
  Result<Dir> OpenSubdir(const Dir& d, std::string_view n, bool create) override {
    return target_->OpenSubdir(d, n, create);
  }
  Result<FileInfo> StatAt(const Dir& d, std::string_view n) override {
    return target_->StatAt(d, n);
  }
  Result<std::vector<DirEntry>> ListDirAt(const Dir& d) override { return target_->ListDirAt(d); }
  Status ListDirAtInBatches(const Dir& d, size_t batch,
                            const std::function<bool(std::vector<DirEntry>*)>& each) override {
    return target_->ListDirAtInBatches(d, batch, each);
  }
  Status RenameAt(const Dir& f, std::string_view fn, const Dir& t, std::string_view tn,
                  bool replace) override {
    return target_->RenameAt(f, fn, t, tn, replace);
  }
  Status RemoveAt(const Dir& d, std::string_view n) override { return target_->RemoveAt(d, n); }
  Status WriteFileAtomicAt(const Dir& d, std::string_view n, std::string_view data) override {
    return target_->WriteFileAtomicAt(d, n, data);
  }
  Status AppendFileAt(const Dir& d, std::string_view n, std::string_view data) override {
    return target_->AppendFileAt(d, n, data);
  }
  Status SetModifiedTimeAt(const Dir& d, std::string_view n, int64_t micros) override {
    return target_->SetModifiedTimeAt(d, n, micros);
  }
  Status SyncDir(const Dir& d) override { return target_->SyncDir(d); }

 private:
  Env* target_;
};

// Joins two path parts with exactly one '/'.
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace sluice
