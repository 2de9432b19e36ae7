// LockForDaemon: flock on the database file and the spool directories, held until exit.
#include "cli/daemon_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
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

}  // namespace

Status LockForDaemon(const std::string& database, const std::vector<std::string>& spool_dirs,
                     bool take_turns) {
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
  }
  return Status::Ok();
}

}  // namespace sluice::cli
