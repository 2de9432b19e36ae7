// LockForDaemon: flock on the database file and the spool directories, held until exit.
#include "cli/daemon_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "store/store.h"

namespace sluice::cli {
namespace {

// The descriptor stays open until the process exits, on purpose: closing any descriptor of
// a SQLite file would drop the locks SQLite itself holds on it (POSIX record locks).
Status Hold(const std::string& path, bool directory, bool exclusive, const std::string& busy) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return Status::Ok();
  if (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) return Status::Ok();
  int err = errno;
  ::close(fd);
  if (err == EWOULDBLOCK) return Status::FailedPrecondition(busy);
  return Status::FromErrno(err, "lock " + path);
}

constexpr char kDatabaseLockPrefix[] = ".sluice-database-";

// ".sluice-database-" and an id as SharedDatabaseId makes them: 32 hex digits.
bool IsDatabaseLockName(const std::string& name) {
  size_t n = sizeof(kDatabaseLockPrefix) - 1;
  return name.size() == n + 32 && name.compare(0, n, kDatabaseLockPrefix) == 0 &&
         name.find_first_not_of("0123456789abcdef", n) == std::string::npos;
}

// In `dir`: a shared lock on this database's file, then no other database's file held.
Status HoldForDatabase(const std::string& dir, const std::string& id) {
  std::string mine = std::string(kDatabaseLockPrefix) + id;
  // O_NONBLOCK, O_NOFOLLOW: a producer's FIFO or link under such a name neither blocks the
  // start nor leads elsewhere.
  const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  int fd = ::open((dir + "/" + mine).c_str(), flags | O_CREAT, 0644);
  if (fd < 0) return Status::Ok();  // as in Hold: starting on the spool reports the problem
  // Another daemon's look at this file (a moment's exclusive lock) may be under way.
  for (int tries = 0; ::flock(fd, LOCK_SH | LOCK_NB) != 0; ++tries) {
    if (errno != EWOULDBLOCK || tries == 50) {
      Status st = Status::FromErrno(errno, "lock " + dir + "/" + mine);
      ::close(fd);
      return st;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::FromErrno(errno, "list " + dir);
  Status st;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == mine || !IsDatabaseLockName(name)) continue;
    int other = ::openat(dirfd(d), name.c_str(), flags);
    if (other < 0) continue;
    // Only a daemon's own: a producer (another user) holding a file of that name must not
    // keep daemons from the spool.
    struct stat st_other;
    bool daemons = ::fstat(other, &st_other) == 0 && S_ISREG(st_other.st_mode) &&
                   st_other.st_uid == ::geteuid();
    // Not held: a daemon of that database ran here once and has stopped.
    bool held = daemons && ::flock(other, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(other);
    if (held) {
      st = Status::FailedPrecondition(
          "another daemon runs the spool " + dir + " with another database (" + name +
          "): daemons taking turns on a spool share one PostgreSQL database and schema");
      break;
    }
  }
  ::closedir(d);
  return st;  // `fd` stays open, as in Hold
}

}  // namespace

Result<std::string> SharedDatabaseId(Store* store) {
  std::random_device rd;
  char id[33];
  std::snprintf(id, sizeof(id), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return store->SettleValue("store", "id", id);
}

Status LockForDaemon(const std::string& database, const std::vector<std::string>& spool_dirs,
                     const std::string& shared_id) {
  bool take_turns = !shared_id.empty();
  std::string file = SqliteFileOf(database);
  if (!file.empty()) {
    SLUICE_RETURN_IF_ERROR(
        Hold(file, false, true,
             "another daemon uses the database " + file +
                 " (one daemon per SQLite file; daemons that share a database use PostgreSQL)"));
  }
  std::map<std::pair<dev_t, ino_t>, std::string> seen;  // one folder given twice
  for (const std::string& dir : spool_dirs) {
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0) {
      auto [it, fresh] = seen.emplace(std::make_pair(st.st_dev, st.st_ino), dir);
      if (!fresh) {
        return Status::InvalidArgument("the spools " + it->second + " and " + dir +
                                       " are one folder: give each spool a folder of its own");
      }
    }
    SLUICE_RETURN_IF_ERROR(
        Hold(dir, true, !take_turns,
             "another daemon runs the spool " + dir +
                 (take_turns ? " with a database of its own (daemons taking turns on a spool share "
                               "one PostgreSQL database)"
                             : " (one daemon per spool; daemons that take turns on a spool share "
                               "one PostgreSQL database)")));
    if (take_turns) SLUICE_RETURN_IF_ERROR(HoldForDatabase(dir, shared_id));
  }
  return Status::Ok();
}

}  // namespace sluice::cli
