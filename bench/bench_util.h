// Helpers shared by the benchmarks: peak RSS, scratch directories, percentiles, and running a
// phase in a forked child so each phase's peak RSS is its own.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace sluice::bench {

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

inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

inline int InChild(const std::function<int()>& phase) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int rc = phase();
    std::fflush(stdout);
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace sluice::bench
