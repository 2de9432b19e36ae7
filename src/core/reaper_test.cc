// The reaper and the sweep of orphans, with real processes.
#include "core/reaper.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/orphans.h"
#include "core/spawn.h"

namespace sluice {
namespace {

bool Alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return false;
  char buf[512] = {};
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  std::string stat(buf, n);
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] != 'Z';
}

bool GoneWithin(pid_t pid, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A "daemon" forked from the test: runs `body` with the write end of a pipe to report on,
// then sleeps until killed. Its pid and the first thing it reported ("" when nothing).
struct Daemon {
  pid_t pid = -1;
  std::string report;
};
Daemon ForkDaemon(const std::function<void(int report_fd)>& body) {
  int p[2];
  if (pipe(p) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    body(p[1]);
    sleep(60);
    _exit(0);
  }
  close(p[1]);
  char buf[64] = {};
  ssize_t n = pid > 0 ? read(p[0], buf, sizeof(buf) - 1) : -1;
  close(p[0]);
  return {pid, n > 0 ? std::string(buf, static_cast<size_t>(n)) : ""};
}

void KillDaemon(pid_t pid) {
  ::kill(pid, SIGKILL);  // no chance to stop anything
  int status;
  waitpid(pid, &status, 0);
}

// The reaper holds none of the daemon's descriptors (a listening socket held there would keep
// the daemon's port after it died), however high they are numbered.
TEST(ReaperTest, HoldsNothingOfTheDaemonButItsPipe) {
  Daemon daemon = ForkDaemon([](int report) {
    int low = ::dup(report);          // a descriptor below the reaper's pipe
    int high = ::dup2(report, 2000);  // and one above 1024
    if (low < 0 || high != 2000 || !Reaper::Start().ok()) _exit(1);
    char buf[32];
    int n = std::snprintf(buf, sizeof(buf), "%d %d\n", Reaper::pid(), low);
    if (::write(report, buf, static_cast<size_t>(n)) != n) _exit(2);
  });
  ASSERT_GT(daemon.pid, 0);
  int reaper = 0, low = 0;
  ASSERT_EQ(std::sscanf(daemon.report.c_str(), "%d %d", &reaper, &low), 2) << daemon.report;
  // The reaper closes what it inherited right after the fork: look until it has (5 s at most).
  std::string dir = "/proc/" + std::to_string(reaper) + "/fd";
  std::vector<int> held;
  for (int i = 0; i < 250; ++i) {
    held.clear();
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      held.push_back(std::atoi(e.path().filename().c_str()));
    }
    if (held.size() <= 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  KillDaemon(daemon.pid);
  // stdin, stdout, stderr and the pipe from the daemon: nothing else.
  EXPECT_EQ(held.size(), 4u) << "descriptors held by the reaper: " << held.size();
  for (int fd : held) {
    EXPECT_NE(fd, low);
    EXPECT_NE(fd, 2000);
  }
}

// Regression: after kill -9 of the daemon, its commands' children ran on.
TEST(ReaperTest, TheGroupsOfRunningCommandsDieWithTheProcessThatStartedThem) {
  Daemon daemon = ForkDaemon([](int report) {
    // Starts the reaper, then a command whose child outlives the command itself.
    if (!Reaper::Start().ok()) _exit(1);
    SpawnRequest r;
    r.path = "/bin/sh";
    r.argv = {"sh", "-c", "sleep 60 & echo $! >&3; wait"};
    r.env = {"PATH=/usr/bin:/bin"};
    // The grandchild's pid goes to the test through fd 3 (dup'd by the shell's redirect).
    dup2(report, 3);
    if (!Spawn(r).ok()) _exit(2);
  });
  ASSERT_GT(daemon.pid, 0);
  ASSERT_FALSE(daemon.report.empty());
  pid_t grandchild = std::atoi(daemon.report.c_str());
  ASSERT_TRUE(Alive(grandchild));
  KillDaemon(daemon.pid);
  EXPECT_TRUE(GoneWithin(grandchild, std::chrono::seconds(10)));
}

TEST(OrphansTest, WhatCarriesAMarkerIsFoundAndKilledWithItsGroup) {
  std::string marker = NewRunMarker();
  ASSERT_EQ(marker.size(), 32u);
  SpawnRequest r;
  r.path = "/bin/sh";
  r.argv = {"sh", "-c", "sleep 60 & sleep 60 & wait"};
  r.env = {"PATH=/usr/bin:/bin", "SLUICE_RUN=" + marker};
  auto pid = Spawn(r);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  // The shell and its two sleeps, once both have become `sleep`: a process in the middle of
  // execve shows an empty environment for a moment, so a forked shell not yet `sleep` may be
  // missed by the next look (the count below would then be 2; the group kill still takes it).
  auto settled = [&] {
    auto found = FindMarked(marker);
    int sleeping = 0;
    for (pid_t p : found) {
      std::ifstream comm("/proc/" + std::to_string(p) + "/comm");
      std::string name;
      sleeping += (comm >> name) && name == "sleep";
    }
    return found.size() == 3 && sleeping == 2;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!settled() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(FindMarked(marker).size(), 3u);
  EXPECT_TRUE(FindMarked(NewRunMarker()).empty());  // another marker: nothing
  std::thread reap([&] {
    int status;
    waitpid(*pid, &status, 0);
  });
  auto killed = KillMarked(marker, 10);
  reap.join();
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  EXPECT_EQ(*killed, 3);
  EXPECT_TRUE(FindMarked(marker).empty());
  Reaper::Untrack(*pid);
}

TEST(SpawnTest, ACommandIsResolvedCanonicallyAndAMissingOneIsNotFound) {
  auto sh = ResolveCommand("sh");
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(sh->front(), '/');
  auto dots = ResolveCommand("/bin/../bin/sh");
  ASSERT_TRUE(dots.ok());
  EXPECT_EQ(*dots, *sh);
  EXPECT_TRUE(ResolveCommand("no-such-command-here").status().IsNotFound());
  EXPECT_TRUE(ResolveCommand("/etc/passwd").status().IsNotFound());  // not executable
}

TEST(SpawnTest, ChildrenGetACleanEnvironment) {
  setenv("SLUICE_API_TOKEN", "secret", 1);
  setenv("KEEP_ME", "yes", 1);
  ConfigureChildren({"KEEP_ME"}, "m", 0);
  std::vector<std::string> env = ChildEnvironment({"JOB=1"});
  std::string all;
  for (const std::string& e : env) all += e + "\n";
  EXPECT_EQ(all.find("SLUICE_API_TOKEN"), std::string::npos);
  EXPECT_NE(all.find("KEEP_ME=yes\n"), std::string::npos);
  EXPECT_NE(all.find("JOB=1\n"), std::string::npos);
  EXPECT_NE(all.find("SLUICE_RUN=m\n"), std::string::npos);
  EXPECT_NE(all.find("PATH="), std::string::npos);
  ConfigureChildren({}, "", 0);
  unsetenv("SLUICE_API_TOKEN");
  unsetenv("KEEP_ME");
}

}  // namespace
}  // namespace sluice
