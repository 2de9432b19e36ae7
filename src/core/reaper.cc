// Reaper: fork, then a loop of read() and, at the end, kill().
#include "core/reaper.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace sluice {
namespace {

std::mutex g_mu;  // one writer at a time on the pipe
std::atomic<int> g_fd{-1};
std::atomic<pid_t> g_pid{0};

constexpr int kMaxGroups = 1 << 16;

// The helper: system calls only (it was forked from a process with threads), no allocation.
[[noreturn]] void HelperMain(int fd) {
  prctl(PR_SET_NAME, "sluice-reaper");
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Hold nothing of the daemon's: a listening socket kept open here would keep the port.
  // close_range: two calls; a kernel without it (before 5.9) gets them closed one by one.
  bool ranged = (fd <= 3 || syscall(SYS_close_range, 3u, static_cast<unsigned>(fd) - 1, 0u) == 0) &&
                syscall(SYS_close_range, static_cast<unsigned>(fd) + 1, ~0u, 0u) == 0;
  if (!ranged) {
    for (int i = 3; i < 1024; ++i) {
      if (i != fd) close(i);
    }
  }
  static pid_t groups[kMaxGroups];
  int n = 0;
  unsigned char rec[5];
  size_t have = 0;
  while (true) {
    ssize_t got = read(fd, rec + have, sizeof(rec) - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // the daemon is gone
    have += static_cast<size_t>(got);
    if (have < sizeof(rec)) continue;
    have = 0;
    int32_t pgid;
    std::memcpy(&pgid, rec + 1, sizeof(pgid));
    if (rec[0] == 'T' && n < kMaxGroups) {
      groups[n++] = pgid;
    } else if (rec[0] == 'U') {
      for (int i = 0; i < n; ++i) {
        if (groups[i] == pgid) {
          groups[i] = groups[--n];
          break;
        }
      }
    }
  }
  for (int i = 0; i < n; ++i) kill(-groups[i], SIGKILL);
  _exit(0);
}

void Send(char op, pid_t pgid) {
  int fd = g_fd.load();
  if (fd < 0) return;
  unsigned char rec[5];
  rec[0] = static_cast<unsigned char>(op);
  int32_t v = static_cast<int32_t>(pgid);
  std::memcpy(rec + 1, &v, sizeof(v));
  std::lock_guard<std::mutex> lock(g_mu);
  size_t done = 0;
  while (done < sizeof(rec)) {
    ssize_t n = write(fd, rec + done, sizeof(rec) - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the helper is gone: nothing more to tell it
    done += static_cast<size_t>(n);
  }
}

}  // namespace

Status Reaper::Start() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_fd.load() >= 0) return Status::Ok();
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe for the reaper");
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(p[0]);
    close(p[1]);
    return Status::FromErrno(err, "fork of the reaper");
  }
  if (pid == 0) {
    close(p[1]);
    HelperMain(p[0]);
  }
  close(p[0]);
  g_pid = pid;
  g_fd = p[1];
  return Status::Ok();
}

void Reaper::Track(pid_t pgid) { Send(static_cast<char>(kTrack), pgid); }
void Reaper::Untrack(pid_t pgid) { Send('U', pgid); }
pid_t Reaper::pid() { return g_pid.load(); }
int Reaper::fd() { return g_fd.load(); }

}  // namespace sluice
