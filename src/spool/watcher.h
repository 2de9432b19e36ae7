// Watcher: inotify on a spool root. Create it BEFORE the first scan so nothing that lands
// between the scan and the watch is missed (queuedir's lost wakeup).
//
// It reports names of files closed after writing (IN_CLOSE_WRITE), moved in (IN_MOVED_TO) or
// created (IN_CREATE: hard links); the caller still checks each one is complete. An overflow of
// the kernel's queue is reported so the caller rescans.
#pragma once

#include <string>
#include <vector>

#include "core/fd.h"
#include "core/status.h"

namespace sluice {

class Watcher {
 public:
  static Result<Watcher> Create(const std::string& dir);
  // Watches `dir` anew (it may have been deleted and created again: the old watch died with
  // it). Cheap when it is the same directory.
  Status Rewatch(const std::string& dir);

  // Waits up to `timeout_ms` for events (returns early on Wake()). Appends names to *names and
  // sets *overflow when the kernel dropped events.
  Status Wait(int timeout_ms, std::vector<std::string>* names, bool* overflow);
  // Makes a Wait() in another thread return now. Thread-safe.
  void Wake();

 private:
  Watcher() = default;
  UniqueFd inotify_;
  int wd_ = -1;
  UniqueFd wake_;  // eventfd
};

}  // namespace sluice
