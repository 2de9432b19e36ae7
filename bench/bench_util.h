// Helpers shared by the benchmarks: peak RSS, scratch directories, percentiles, and running a
// phase in a forked child so each phase's peak RSS is its own.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::bench {

// A command-line list: "1000,10000" -> {1000, 10000}; entries that are not positive numbers
// are skipped.
inline std::vector<int> IntList(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  for (std::string n; std::getline(ss, n, ',');) {
    if (std::atoi(n.c_str()) > 0) out.push_back(std::atoi(n.c_str()));
  }
  return out;
}

inline double PeakRssMb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// An empty DIR/spool under $TMPDIR for one phase.
inline std::string FreshDir(const std::string& name) {
  namespace fs = std::filesystem;
  std::string dir =
      (fs::temp_directory_path() / ("sluice-bench-" + name + "-" + std::to_string(getpid())))
          .string();
  fs::remove_all(dir);
  fs::create_directories(dir + "/spool");
  return dir;
}

// A listening TCP socket on 127.0.0.1 and an ephemeral port (its port in *port), or -1.
inline int ListenLoopback(int backlog, uint16_t* port) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (ls < 0 || bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(ls, backlog) != 0 || getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (ls >= 0) close(ls);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return ls;
}

// A connection to 127.0.0.1:port with TCP_NODELAY, or -1.
inline int ConnectLoopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// A phase run in a forked child: its exit code, its CPU (user + system) and wall seconds.
struct ChildRun {
  int rc = 1;
  double cpu_s = 0;
  double wall_s = 0;
};

inline ChildRun InChildMeasured(const std::function<int()>& phase) {
  std::fflush(stdout);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int rc = phase();
    std::fflush(stdout);
    _exit(rc);
  }
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  ChildRun out;
  out.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  out.cpu_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
              ru.ru_stime.tv_usec / 1e6;
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

inline int InChild(const std::function<int()>& phase) { return InChildMeasured(phase).rc; }

// CPU seconds (user + system) of process `pid` from /proc; with `reaped`, also those of its
// children it has waited for (a server's exited workers). 0 when it cannot be read.
inline double ProcessCpuSeconds(pid_t pid, bool reaped) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> f;  // from the field after the command name on
  for (size_t i = close + 2; i < line.size();) {
    size_t sp = line.find(' ', i);
    f.push_back(line.substr(i, sp - i));
    if (sp == std::string::npos) break;
    i = sp + 1;
  }
  if (f.size() < 15) return 0;
  double ticks = std::stod(f[11]) + std::stod(f[12]);
  if (reaped) ticks += std::stod(f[13]) + std::stod(f[14]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU and context switches of this process's live threads, summed by thread name, so a phase
// can say which thread spent what per item (threads that exited are not in it).
struct ThreadUse {
  double cpu_s = 0;
  long long voluntary = 0;    // switches while waiting (a wake-up each)
  long long involuntary = 0;  // preempted: runnable but a core was taken from it
};
inline std::map<std::string, ThreadUse> ThreadsByName() {
  std::map<std::string, ThreadUse> out;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::string dir = task.path().string();
    std::string name, line;
    std::getline(std::ifstream(dir + "/comm"), name);
    ThreadUse& u = out[name];
    std::getline(std::ifstream(dir + "/stat"), line);
    size_t close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream f(line.substr(close + 2));
      std::string skip;
      double utime = 0, stime = 0;
      for (int i = 0; i < 11; ++i) f >> skip;
      f >> utime >> stime;
      u.cpu_s += (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    std::ifstream status(dir + "/status");
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
        u.voluntary += std::stoll(line.substr(24));
      }
      if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        u.involuntary += std::stoll(line.substr(27));
      }
    }
  }
  return out;
}

// "name CPU µs / switches per item; …" for what each thread name used between two snapshots.
inline std::string ThreadUseLine(const std::map<std::string, ThreadUse>& before,
                                 const std::map<std::string, ThreadUse>& after, size_t items) {
  std::string out;
  double n = static_cast<double>(std::max<size_t>(items, 1));
  for (const auto& [name, a] : after) {
    ThreadUse b;
    if (auto it = before.find(name); it != before.end()) b = it->second;
    if (a.cpu_s - b.cpu_s < 0.005) continue;  // idle (less than one clock tick)
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%s%s %.1f us, %.2f wakes + %.2f preemptions",
                  out.empty() ? "" : "; ", name.c_str(), (a.cpu_s - b.cpu_s) * 1e6 / n,
                  (a.voluntary - b.voluntary) / n, (a.involuntary - b.involuntary) / n);
    out += buf;
  }
  return out;
}

}  // namespace sluice::bench
