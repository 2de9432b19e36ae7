// PosixEnv: the real filesystem. Every errno becomes a Status here and nowhere else.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>

#include "core/clock.h"
#include "core/env.h"
#include "core/fd.h"

namespace sluice {
namespace {

FileType TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return FileType::kRegular;
  if (S_ISDIR(mode)) return FileType::kDirectory;
  if (S_ISLNK(mode)) return FileType::kSymlink;
  return FileType::kOther;
}

FileInfo InfoOf(const struct stat& st) {
  FileInfo info;
  info.type = TypeOf(st.st_mode);
  info.size = static_cast<uint64_t>(st.st_size);
  info.dev = st.st_dev;
  info.ino = st.st_ino;
  // Saturated: anyone can set a file's time to year 9999, past int64 nanoseconds.
  info.mtime_ns =
      SatAdd(SatMul(static_cast<int64_t>(st.st_mtim.tv_sec), 1000000000), st.st_mtim.tv_nsec);
  return info;
}

FileInfo InfoOf(const struct statx& sx) {
  FileInfo info;
  info.type = TypeOf(sx.stx_mode);
  info.size = sx.stx_size;
  info.dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);  // as stat's st_dev
  info.ino = sx.stx_ino;
  auto ns = [](const struct statx_timestamp& t) {
    return SatAdd(SatMul(t.tv_sec, 1000000000), static_cast<int64_t>(t.tv_nsec));
  };
  info.mtime_ns = ns(sx.stx_mtime);
  if (sx.stx_mask & STATX_BTIME) info.btime_ns = ns(sx.stx_btime);
  return info;
}

// A read lease taken to test a file is broken by any process opening the file for writing
// meanwhile, and the kernel then sends the lease holder SIGIO, whose default action ends the
// process: a producer rewriting its file in place killed the daemon. SIGIO is given a handler
// that does nothing (once, and only while nobody else handles it); exec resets handlers, so
// commands the daemon runs see SIGIO as usual.
void NoOp(int) {}

void SurviveLeaseBreaks() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old;
    if (sigaction(SIGIO, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) return;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = NoOp;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGIO, &sa, nullptr);
  });
}

// write(2) until all of `data` is written.
Status WriteAll(int fd, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// The entries of an open directory stream, which it closes.
// Reads `dir` (and closes it), `each` given up to `batch` entries at a time.
Status ReadEntriesInBatches(DIR* dir, const std::string& path, size_t batch,
                            const std::function<bool(std::vector<DirEntry>*)>& each) {
  std::vector<DirEntry> entries;
  bool more = true;
  errno = 0;
  while (struct dirent* e = ::readdir(dir)) {
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    DirEntry entry{std::string(name), FileType::kOther};
    if (e->d_type == DT_REG) entry.type = FileType::kRegular;
    if (e->d_type == DT_DIR) entry.type = FileType::kDirectory;
    if (e->d_type == DT_LNK) entry.type = FileType::kSymlink;
    entries.push_back(std::move(entry));
    if (entries.size() >= batch) {
      more = each(&entries);
      entries.clear();
      if (!more) break;
    }
    errno = 0;
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return Status::FromErrno(err, "readdir " + path);
  if (more && !entries.empty()) each(&entries);
  return Status::Ok();
}

Result<std::vector<DirEntry>> ReadEntries(DIR* dir, const std::string& path) {
  std::vector<DirEntry> all;
  Status st = ReadEntriesInBatches(dir, path, SIZE_MAX, [&](std::vector<DirEntry>* part) {
    all = std::move(*part);
    return true;
  });
  if (!st.ok()) return st;
  return all;
}

// The regular file at `path`, opened with `flags` added, read whole (at most its size when
// opened, and at most `max_bytes`). O_NONBLOCK: a FIFO swapped in never blocks.
Status ReadRegularFile(const std::string& path, int flags, uint64_t max_bytes, std::string* out,
                       FileInfo* info) {
  out->clear();
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | flags));
  if (!fd.valid()) {
    if (errno == ELOOP && (flags & O_NOFOLLOW) != 0) {
      return Status::InvalidArgument(path + " is a symbolic link");
    }
    return Status::FromErrno(errno, "open " + path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "fstat " + path);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status::InvalidArgument(path + " is " + std::to_string(st.st_size) +
                                   " bytes, over the limit of " + std::to_string(max_bytes));
  }
  // Room for a parser's padding too (ParseJsonInsitu appends 4 NULs): no second copy.
  out->reserve(static_cast<size_t>(st.st_size) + 64);
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::read(fd.get(), out->data() + done, out->size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      out->clear();
      return Status::FromErrno(errno, "read " + path);
    }
    if (n == 0) break;  // shrank under us; keep what is there
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  if (info != nullptr) *info = InfoOf(st);
  return Status::Ok();
}

std::string DirName(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

class PosixEnv : public Env {
 public:
  Result<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "lstat " + path);
    return InfoOf(st);
  }

  Result<std::vector<DirEntry>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return Status::FromErrno(errno, "opendir " + path);
    return ReadEntries(dir, path);
  }

  Status ReadFile(const std::string& path, uint64_t max_bytes, std::string* out,
                  FileInfo* info) override {
    // O_NOFOLLOW: a symlink is never read.
    return ReadRegularFile(path, O_NOFOLLOW, max_bytes, out, info);
  }

  Result<bool> IsOpenForWriting(const std::string& path) override {
    SurviveLeaseBreaks();
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) return Status::FromErrno(errno, "open " + path);
    // A read lease is refused with EAGAIN while any process has the file open for writing.
    // A lease granted ends when its only descriptor closes (at return), as an F_UNLCK would:
    // one system call fewer per file.
    if (::fcntl(fd.get(), F_SETLEASE, F_RDLCK) == 0) return false;
    if (errno == EAGAIN || errno == EBUSY) return true;
    return Status::Unavailable("leases not available on " + path);
  }

  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    static std::atomic<uint64_t> counter{0};
    std::string tmp =
        path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return Status::FromErrno(errno, "create " + tmp);
    if (Status st = WriteAll(fd.get(), data, tmp); !st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
    // fsync the data before the rename publishes it, so a crash never shows a torn file.
    if (::fsync(fd.get()) != 0) {
      Status st = Status::FromErrno(errno, "fsync " + tmp);
      ::unlink(tmp.c_str());
      return st;
    }
    Status st = fd.Close();
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      st = Status::FromErrno(errno, "rename " + tmp);
      ::unlink(tmp.c_str());
      return st;
    }
    return SyncDir(DirName(path));
  }

  Status WriteFile(const std::string& path, std::string_view data) override {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return Status::FromErrno(errno, "create " + path);
    SLUICE_RETURN_IF_ERROR(WriteAll(fd.get(), data, path));
    return fd.Close();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Status::FromErrno(errno, "rename " + from + " -> " + to);
    }
    return Status::Ok();
  }

  Status RenameNoReplace(const std::string& from, const std::string& to) override {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
      return Status::FromErrno(errno, "rename " + from + " -> " + to);
    }
    return Status::Ok();
  }

  Status Touch(const std::string& path) override {
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, AT_SYMLINK_NOFOLLOW) != 0) {
      return Status::FromErrno(errno, "touch " + path);
    }
    return Status::Ok();
  }

  Status SetModifiedTime(const std::string& path, int64_t micros) override {
    struct timespec times[2];
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = static_cast<time_t>(micros / 1000000);
    times[1].tv_nsec = static_cast<long>(micros % 1000000) * 1000;
    if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return Status::FromErrno(errno, "set the time of " + path);
    }
    return Status::Ok();
  }

  Status AppendFile(const std::string& path, std::string_view data) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return Status::FromErrno(errno, "open " + path);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::close(fd);
        return Status::FromErrno(err, "append to " + path);
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "unlink " + path);
    return Status::Ok();
  }

  Status CreateDirs(const std::string& path) override {
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      partial = path.substr(0, pos);
      if (partial.empty()) continue;
      if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::FromErrno(errno, "mkdir " + partial);
      }
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    if (!S_ISDIR(st.st_mode)) return Status::FailedPrecondition(path + " is not a directory");
    return Status::Ok();
  }

  Status SyncDir(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return Status::FromErrno(errno, "open dir " + path);
    if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync dir " + path);
    return fd.Close();
  }

  Result<Dir> OpenDir(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOTDIR) return Status::FailedPrecondition(path + " is not a directory");
      return Status::FromErrno(errno, "open directory " + path);
    }
    return Opened(std::move(fd), path);
  }

  Result<Dir> OpenSubdir(const Dir& parent, std::string_view name, bool create) override {
    std::string n(name);
    std::string path = parent.PathOf(name);
    if (create && ::mkdirat(parent.fd(), n.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "mkdir " + path);
    }
    UniqueFd fd(::openat(parent.fd(), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      int err = errno;
      struct stat st;
      if ((err == ELOOP || err == ENOTDIR) &&
          ::fstatat(parent.fd(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
          return Status::FailedPrecondition(
              path +
              " is a symbolic link; files are never moved through one (make it a "
              "directory)");
        }
        return Status::FailedPrecondition(path + " is not a directory");
      }
      return Status::FromErrno(err, "open directory " + path);
    }
    return Opened(std::move(fd), path);
  }

  Result<FileInfo> StatAt(const Dir& dir, std::string_view name) override {
    std::string n(name);
    struct statx sx;
    if (::statx(dir.fd(), n.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx) ==
        0) {
      return InfoOf(sx);
    }
    if (errno != ENOSYS) return Status::FromErrno(errno, "lstat " + dir.PathOf(name));
    struct stat st;  // a kernel (or sandbox) without statx
    if (::fstatat(dir.fd(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return Status::FromErrno(errno, "lstat " + dir.PathOf(name));
    }
    return InfoOf(st);
  }

  Result<std::vector<DirEntry>> ListDirAt(const Dir& dir) override {
    auto d = OpenStream(dir);
    if (!d.ok()) return d.status();
    return ReadEntries(*d, dir.path());
  }

  Status ListDirAtInBatches(const Dir& dir, size_t batch,
                            const std::function<bool(std::vector<DirEntry>*)>& each) override {
    auto d = OpenStream(dir);
    if (!d.ok()) return d.status();
    return ReadEntriesInBatches(*d, dir.path(), std::max<size_t>(1, batch), each);
  }

  Status RenameAt(const Dir& from, std::string_view from_name, const Dir& to,
                  std::string_view to_name, bool replace) override {
    std::string f(from_name), t(to_name);
    if (::renameat2(from.fd(), f.c_str(), to.fd(), t.c_str(), replace ? 0 : RENAME_NOREPLACE) !=
        0) {
      return Status::FromErrno(errno,
                               "rename " + from.PathOf(from_name) + " -> " + to.PathOf(to_name));
    }
    return Status::Ok();
  }

  Status RemoveAt(const Dir& dir, std::string_view name) override {
    std::string n(name);
    if (::unlinkat(dir.fd(), n.c_str(), 0) != 0) {
      return Status::FromErrno(errno, "unlink " + dir.PathOf(name));
    }
    return Status::Ok();
  }

  Status WriteFileAtomicAt(const Dir& dir, std::string_view name, std::string_view data) override {
    static std::atomic<uint64_t> counter{0};
    // Short, whatever `name` is: a name near the 255-byte limit must still be writable.
    std::string tmp =
        ".sluice-tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
    UniqueFd fd(::openat(dir.fd(), tmp.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd.valid()) return Status::FromErrno(errno, "create " + dir.PathOf(tmp));
    auto fail = [&](Status st) {
      ::unlinkat(dir.fd(), tmp.c_str(), 0);
      return st;
    };
    if (Status st = WriteAll(fd.get(), data, dir.PathOf(tmp)); !st.ok()) return fail(st);
    // fsync the data before the rename publishes it, so a crash never shows a torn file.
    if (::fsync(fd.get()) != 0) return fail(Status::FromErrno(errno, "fsync " + dir.PathOf(tmp)));
    if (Status st = fd.Close(); !st.ok()) return fail(st);
    std::string n(name);
    if (::renameat(dir.fd(), tmp.c_str(), dir.fd(), n.c_str()) != 0) {
      return fail(Status::FromErrno(errno, "rename " + dir.PathOf(tmp)));
    }
    return SyncDir(dir);
  }

  Status AppendFileAt(const Dir& dir, std::string_view name, std::string_view data) override {
    std::string n(name);
    UniqueFd fd(::openat(dir.fd(), n.c_str(),
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd.valid()) return Status::FromErrno(errno, "open " + dir.PathOf(name));
    SLUICE_RETURN_IF_ERROR(WriteAll(fd.get(), data, dir.PathOf(name)));
    return fd.Close();
  }

  Status SetModifiedTimeAt(const Dir& dir, std::string_view name, int64_t micros) override {
    struct timespec times[2];
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = static_cast<time_t>(micros / 1000000);
    times[1].tv_nsec = static_cast<long>(micros % 1000000) * 1000;
    if (micros == kNowMicros) times[1].tv_nsec = UTIME_NOW;
    std::string n(name);
    if (::utimensat(dir.fd(), n.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return Status::FromErrno(errno, "set the time of " + dir.PathOf(name));
    }
    return Status::Ok();
  }

  Status SyncDir(const Dir& dir) override {
    if (::fsync(dir.fd()) != 0) return Status::FromErrno(errno, "fsync dir " + dir.path());
    return Status::Ok();
  }

 private:
  // fdopendir takes the descriptor it is given: a duplicate, reading from the start.
  static Result<DIR*> OpenStream(const Dir& dir) {
    int dup = ::openat(dir.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0) return Status::FromErrno(errno, "opendir " + dir.path());
    DIR* d = ::fdopendir(dup);
    if (d == nullptr) {
      int err = errno;
      ::close(dup);
      return Status::FromErrno(err, "opendir " + dir.path());
    }
    return d;
  }

  static Result<Dir> Opened(UniqueFd fd, const std::string& path) {
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "fstat " + path);
    return Dir(std::move(fd), path, st.st_dev, st.st_ino);
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

std::string Dir::PathOf(std::string_view name) const { return JoinPath(path_, name); }

Status ReadConfigFile(const std::string& path, uint64_t max_bytes, std::string* out) {
  return ReadRegularFile(path, 0, max_bytes, out, nullptr);
}

std::string JoinPath(std::string_view a, std::string_view b) {
  std::string out(a);
  if (!out.empty() && out.back() != '/') out += '/';
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  out += b;
  return out;
}

}  // namespace sluice
