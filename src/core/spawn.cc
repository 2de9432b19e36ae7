// Spawn: clone(CLONE_VM | CLONE_VFORK) as posix_spawn does (no copy of the daemon's memory),
// plus what posix_spawn cannot do: a parent-death signal and the descriptor limit.
#include "core/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "core/reaper.h"

extern char** environ;

namespace sluice {

const char* const kChildEnvironment[] = {"PATH", "HOME",     "USER",   "LOGNAME",
                                         "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE",
                                         "TZ",   "TMPDIR",   nullptr};

namespace {

struct ChildConfig {
  std::map<std::string, std::string> base;  // name -> "NAME=value"
  std::vector<std::string> path;            // absolute PATH entries
  uint64_t nofile = 0;                      // 0: leave the limit alone
  bool configured = false;
};

std::mutex g_mu;
ChildConfig g_config;

std::string EnvValue(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// A copy of the configuration; before ConfigureChildren (unit tests, tools), the defaults.
ChildConfig Config() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_config.configured) return g_config;
  }
  ConfigureChildren({}, "", 0);
  std::lock_guard<std::mutex> lock(g_mu);
  return g_config;
}

// Everything a child does between clone() and execve() runs on the parent's memory (CLONE_VM)
// while the parent waits (CLONE_VFORK): system calls only, no allocation, no locks.
struct ChildArgs {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;
  int out_fd;
  int err_fd;
  pid_t parent;
  int reaper_fd;  // Reaper::fd(): the child tells the helper its group before exec
  struct rlimit nofile;
  bool set_nofile;
  int error;    // set by the child when it cannot exec; the parent reads it after clone returns
  bool in_cwd;  // the error was entering cwd, not running the program
};

// Not instrumented by the sanitizers: it runs on a stack of its own that they do not know.
__attribute__((no_sanitize("address", "undefined"))) int ChildMain(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  setpgid(0, 0);
  if (a->reaper_fd >= 0) {
    // Known to the reaper before the command runs: a daemon killed right after the exec
    // still takes the command's whole group with it. One write of 5 bytes to a pipe is
    // atomic; the helper's pipe is close-on-exec.
    unsigned char rec[5];
    rec[0] = Reaper::kTrack;
    int32_t self = static_cast<int32_t>(getpid());
    __builtin_memcpy(rec + 1, &self, sizeof(self));
    (void)!write(a->reaper_fd, rec, sizeof(rec));
  }
  // Killed when the thread that started it dies; if that happened already, go.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != a->parent) _exit(127);
  // exec resets handled signals; ignored ones would stay ignored.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  static const int kReset[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,
                               SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
  for (int sig : kReset) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) {
    a->error = errno;
    _exit(127);
  }
  if (dup2(null_fd, 0) < 0 || dup2(a->out_fd >= 0 ? a->out_fd : null_fd, 1) < 0 ||
      dup2(a->err_fd >= 0 ? a->err_fd : null_fd, 2) < 0) {
    a->error = errno;
    _exit(127);
  }
  if (a->cwd != nullptr && chdir(a->cwd) != 0) {
    a->error = errno;
    a->in_cwd = true;
    _exit(127);
  }
  if (a->set_nofile) setrlimit(RLIMIT_NOFILE, &a->nofile);
  execve(a->path, a->argv, a->envp);
  a->error = errno;
  _exit(127);
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

void ConfigureChildren(const std::vector<std::string>& pass, const std::string& marker,
                       uint64_t nofile) {
  ChildConfig c;
  for (const char* const* n = kChildEnvironment; *n != nullptr; ++n) {
    if (std::getenv(*n) != nullptr) c.base[*n] = std::string(*n) + "=" + EnvValue(*n);
  }
  for (const std::string& n : pass) {
    if (std::getenv(n.c_str()) != nullptr) c.base[n] = n + "=" + EnvValue(n.c_str());
  }
  if (!c.base.count("PATH")) c.base["PATH"] = "PATH=/usr/local/bin:/usr/bin:/bin";
  if (!marker.empty()) c.base["SLUICE_RUN"] = "SLUICE_RUN=" + marker;
  std::string path = c.base["PATH"].substr(5);
  for (size_t start = 0; start <= path.size();) {
    size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    std::string entry = path.substr(start, colon - start);
    if (!entry.empty() && entry[0] == '/') c.path.push_back(entry);  // never "." or relative
    start = colon + 1;
  }
  c.nofile = nofile;
  c.configured = true;
  std::lock_guard<std::mutex> lock(g_mu);
  g_config = std::move(c);
}

std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> vars = Config().base;
  for (const std::string& kv : extra) {
    size_t eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv;
  }
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (auto& [name, kv] : vars) out.push_back(std::move(kv));
  return out;
}

Result<std::string> ResolveCommand(const std::string& argv0, const std::string& cwd) {
  if (argv0.empty()) return Status::InvalidArgument("the command is empty");
  std::string candidate;
  if (argv0.find('/') != std::string::npos) {
    candidate = argv0[0] == '/' || cwd.empty() ? argv0 : cwd + "/" + argv0;
  } else {
    for (const std::string& dir : Config().path) {
      std::string p = dir + "/" + argv0;
      if (IsExecutableFile(p)) {
        candidate = p;
        break;
      }
    }
    if (candidate.empty()) {
      return Status::NotFound("command not found: " + argv0 + " (looked in the daemon's PATH)");
    }
  }
  char real[PATH_MAX];
  if (::realpath(candidate.c_str(), real) == nullptr) {
    return Status::NotFound("command not found: " + argv0 + " (" + std::strerror(errno) + ")");
  }
  if (!IsExecutableFile(real)) {
    return Status::NotFound("not an executable file: " + argv0 + " (" + real + ")");
  }
  return std::string(real);
}

Result<pid_t> Spawn(const SpawnRequest& r) {
  if (r.argv.empty()) return Status::InvalidArgument("no command to run");
  std::vector<char*> argv, envp;
  for (const std::string& a : r.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : r.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ChildArgs a{};
  a.path = r.path.c_str();
  a.argv = argv.data();
  a.envp = envp.data();
  a.cwd = r.cwd.empty() ? nullptr : r.cwd.c_str();
  a.out_fd = r.stdout_fd;
  a.err_fd = r.stderr_fd;
  a.parent = getpid();
  a.reaper_fd = Reaper::fd();
  uint64_t nofile = Config().nofile;
  if (nofile > 0 && getrlimit(RLIMIT_NOFILE, &a.nofile) == 0) {
    a.nofile.rlim_cur = std::min<rlim_t>(static_cast<rlim_t>(nofile), a.nofile.rlim_max);
    a.set_nofile = true;
  }
  // No signal handler may run on the child's side of the shared memory before exec.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  constexpr size_t kStack = 64 * 1024;
  alignas(16) static thread_local char stack[kStack];
  pid_t pid = clone(ChildMain, stack + kStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0)
    return Status::Unavailable("cannot start " + r.path + ": " + std::strerror(clone_errno));
  // The leader is in its group already (set in the child); setting it here too closes the
  // window in which a signal to the group would miss it.
  setpgid(pid, pid);
  if (a.error != 0) {
    Reaper::Untrack(pid);  // before the reap: until then the group id cannot be reused
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (a.in_cwd) {
      return Status::Unavailable("cannot run " + r.argv[0] + ": its working directory " + r.cwd +
                                 ": " + std::strerror(a.error));
    }
    // Arguments and environment beyond what the kernel takes never fit: trying again is no use.
    if (a.error == E2BIG) {
      return Status::InvalidArgument("cannot run " + r.argv[0] +
                                     ": its arguments and environment are larger than the "
                                     "kernel takes (" +
                                     std::strerror(a.error) + ")");
    }
    return Status::Unavailable("cannot run " + r.argv[0] + ": " + std::strerror(a.error));
  }
  return pid;  // tracked by the child itself, before its exec
}

}  // namespace sluice
