// Finding and killing a dead daemon's commands through /proc.
#include "core/orphans.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "core/fd.h"

namespace sluice {
namespace {

// The whole of a small /proc file.
std::string ReadProcFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (4u << 20)) break;  // environments are far smaller
  }
  return out;
}

}  // namespace

std::string NewRunMarker() {
  std::random_device rd;
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

std::string BootId() {
  std::string id = ReadProcFile("/proc/sys/kernel/random/boot_id");
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

uint64_t ProcessStartTicks(pid_t pid) {
  std::string stat = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  // Fields after the command name start at 3 (state); starttime is field 22.
  for (int i = 3; i <= 22 && (in >> field); ++i) {
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

std::vector<pid_t> FindMarked(const std::string& marker) {
  std::vector<pid_t> out;
  if (marker.empty()) return out;
  std::string needle = "SLUICE_RUN=" + marker;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  pid_t self = ::getpid();
  while (struct dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0 || pid == self) continue;
    std::string env = ReadProcFile("/proc/" + std::string(e->d_name) + "/environ");
    // Entries are NUL-separated: match a whole entry.
    for (size_t at = env.find(needle); at != std::string::npos; at = env.find(needle, at + 1)) {
      bool starts = at == 0 || env[at - 1] == '\0';
      size_t after = at + needle.size();
      if (starts && (after == env.size() || env[after] == '\0')) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  ::closedir(proc);
  return out;
}

Result<int> KillMarked(const std::string& marker, double wait_s) {
  std::vector<pid_t> found = FindMarked(marker);
  if (found.empty()) return 0;
  std::set<pid_t> groups;
  for (pid_t pid : found) {
    pid_t pgid = ::getpgid(pid);
    if (pgid > 1 && pgid != ::getpgid(0)) groups.insert(pgid);
  }
  for (pid_t g : groups) ::kill(-g, SIGKILL);
  for (pid_t pid : found) ::kill(pid, SIGKILL);  // one that left its group too
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  while (true) {
    std::vector<pid_t> left = FindMarked(marker);
    if (left.empty()) return static_cast<int>(found.size());
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string pids;
      for (pid_t p : left) pids += (pids.empty() ? "" : ", ") + std::to_string(p);
      return Status::FailedPrecondition("processes of the previous run are still alive (" + pids +
                                        ") after SIGKILL; their jobs would run twice");
    }
    for (pid_t pid : left) ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace sluice
