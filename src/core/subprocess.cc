// RunSubprocess: Spawn (a posix_spawn-like clone), two pipes drained with poll(), a deadline
// on the group.
#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>

#include "core/clock.h"
#include "core/reaper.h"
#include "core/spawn.h"

namespace sluice {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Tail(const std::string& s, size_t n) {
  std::string t = s.size() > n ? s.substr(s.size() - n) : s;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace

std::string SubprocessResult::Describe(double timeout_s) const {
  if (timed_out) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "timed out after %g s", timeout_s);
    return buf + std::string(signal ? std::string(", killed by signal ") + strsignal(signal) : "");
  }
  if (signal != 0) return std::string("killed by signal ") + strsignal(signal);
  std::string what = "exit " + std::to_string(exit_code);
  std::string tail = Tail(err, 500);
  return tail.empty() ? what : what + ": " + tail;
}

Result<SubprocessResult> RunSubprocess(const SubprocessOptions& o) {
  if (o.argv.empty()) return Status::InvalidArgument("no command to run");
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0)
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  SpawnRequest req;
  if (!o.path.empty()) {
    req.path = o.path;
  } else {
    auto path = ResolveCommand(o.argv[0], o.cwd);
    if (!path.ok()) {
      close(out_pipe[0]);
      close(out_pipe[1]);
      close(err_pipe[0]);
      close(err_pipe[1]);
      return Status::Unavailable("cannot run " + o.argv[0] + ": " + path.status().message());
    }
    req.path = *path;
  }
  req.argv = o.argv;
  req.env = ChildEnvironment(o.env);
  req.cwd = o.cwd;
  req.stdout_fd = out_pipe[1];
  req.stderr_fd = err_pipe[1];
  auto spawned = Spawn(req);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (!spawned.ok()) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return spawned.status();
  }
  pid_t pid = *spawned;

  SubprocessResult result;
  int64_t started = NowMs();
  int64_t deadline = SatAdd(started, SecondsToMicros(o.timeout_s) / 1000);
  size_t next_signal = 0;
  int64_t next_signal_at = 0;  // after the timeout: when to send the next stop signal
  bool too_big = false;
  bool refused = false;  // on_stdout said stop
  bool exited = false;
  int64_t drain_until = 0;    // after the command exited: stop reading then
  int64_t fds_closed_at = 0;  // when both pipes were closed
  // A pidfd becomes readable when the command exits: poll() wakes for that too (no sleeping
  // in steps while the pipes are closed and the exit is not visible yet).
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {pidfd, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  std::string partial[2];
  // Every whole line of partial[i]; then what is left too when `flush` (the end) or when it
  // is a huge line without a newline (cut at kMaxLine). The cut is decided on what is left
  // once the whole lines are out: a full read ending mid-line never splits a line.
  constexpr size_t kMaxLine = 65536;
  auto emit = [&](int i, bool flush) {
    size_t start = 0;
    for (size_t nl; (nl = partial[i].find('\n', start)) != std::string::npos; start = nl + 1) {
      o.on_line(i + 1, std::string_view(partial[i]).substr(start, nl - start));
    }
    partial[i].erase(0, start);
    if ((flush || partial[i].size() > kMaxLine) && !partial[i].empty()) {
      o.on_line(i + 1, partial[i]);
      partial[i].clear();
    }
  };
  int open_fds = 2;
  char buf[65536];
  while (true) {
    int64_t now = NowMs();
    if (!result.timed_out && now >= deadline && !exited) {
      result.timed_out = true;
      next_signal_at = now;
    }
    if (result.timed_out && next_signal < o.stop_signals.size() && now >= next_signal_at) {
      if (o.on_signal) o.on_signal(o.stop_signals[next_signal]);
      kill(-pid, o.stop_signals[next_signal++]);
      next_signal_at = SatAdd(now, SecondsToMicros(o.grace_s) / 1000);
    }
    // Exited? Without reaping it: the zombie keeps its pid (and group id) from being reused
    // until the group is killed below.
    siginfo_t info{};
    if (!exited && waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      exited = true;
      drain_until = now + 200;
    }
    if (exited && (open_fds == 0 || now >= drain_until)) break;
    // Pipes closed: the command is exiting (or closed them and runs on); look again soon,
    // then less often.
    if (open_fds == 0 && fds_closed_at == 0) fds_closed_at = now;
    int wait_ms = exited ? 50 : 200;
    if (open_fds == 0 && pidfd < 0) wait_ms = now - fds_closed_at < 100 ? 1 : 200;
    if (exited && fds[2].fd >= 0) fds[2].fd = -1;  // seen: stop polling it
    int n = poll(fds, 3, wait_ms);
    if (o.tick) o.tick();
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        if (o.on_output) o.on_output(std::string_view(buf, static_cast<size_t>(got)));
        if (o.on_line) {
          partial[i].append(buf, static_cast<size_t>(got));
          emit(i, false);
          continue;
        }
        if (i == 0 && o.on_stdout) {
          if (!refused && !o.on_stdout(std::string_view(buf, static_cast<size_t>(got)))) {
            refused = true;
            kill(-pid, SIGKILL);
          }
          continue;
        }
        size_t room = o.max_output_bytes - std::min(o.max_output_bytes, sinks[i]->size());
        if (static_cast<size_t>(got) > room) too_big = true;
        sinks[i]->append(buf, std::min(static_cast<size_t>(got), room));
        if (too_big && !exited) kill(-pid, SIGKILL);
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  if (o.on_line) {
    emit(0, true);
    emit(1, true);
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd >= 0) close(fds[i].fd);
  }
  if (pidfd >= 0) close(pidfd);
  kill(-pid, SIGKILL);   // anything the command left behind in its group
  Reaper::Untrack(pid);  // before the reap: until then the group id cannot be reused
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  result.elapsed_s = (NowMs() - started) / 1000.0;
  if (WIFEXITED(wstatus)) result.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) result.signal = WTERMSIG(wstatus);
  if (too_big) {
    return Status::Unavailable(o.argv[0] + " wrote more than " +
                               std::to_string(o.max_output_bytes >> 20) + " MiB");
  }
  return result;
}

}  // namespace sluice
