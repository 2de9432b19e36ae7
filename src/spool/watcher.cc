// Watcher: inotify + eventfd + poll.
#include "spool/watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include <cstring>

namespace sluice {

Result<Watcher> Watcher::Create(const std::string& dir) {
  Watcher w;
  w.inotify_ = UniqueFd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!w.inotify_.valid()) return Status::FromErrno(errno, "inotify_init1");
  SLUICE_RETURN_IF_ERROR(w.Rewatch(dir));
  w.wake_ = UniqueFd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!w.wake_.valid()) return Status::FromErrno(errno, "eventfd");
  return w;
}

Status Watcher::Wait(int timeout_ms, std::vector<std::string>* names, bool* overflow) {
  struct pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  int n = ::poll(fds, 2, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return Status::Ok();
    return Status::FromErrno(errno, "poll");
  }
  if (fds[1].revents & POLLIN) {
    uint64_t v;
    (void)!::read(wake_.get(), &v, sizeof(v));
  }
  if (!(fds[0].revents & POLLIN)) return Status::Ok();
  alignas(struct inotify_event) char buf[64 * 1024];
  while (true) {
    ssize_t len = ::read(inotify_.get(), buf, sizeof(buf));
    if (len < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      return Status::FromErrno(errno, "read inotify");
    }
    if (len == 0) break;
    for (char* p = buf; p < buf + len;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      if (ev->mask & IN_Q_OVERFLOW) *overflow = true;
      if (ev->len > 0 && !(ev->mask & IN_ISDIR)) names->emplace_back(ev->name);
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
  return Status::Ok();
}

Status Watcher::Rewatch(const std::string& dir) {
  // The same directory keeps its watch (the call only renews it); a new one gets a new watch,
  // and the old one's ended when it was deleted.
  wd_ = inotify_add_watch(inotify_.get(), dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR);
  if (wd_ < 0) return Status::FromErrno(errno, "inotify_add_watch " + dir);
  return Status::Ok();
}

void Watcher::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

}  // namespace sluice
