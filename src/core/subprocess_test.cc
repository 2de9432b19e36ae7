// RunSubprocess with real commands.
#include "core/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

TEST(SubprocessTest, CollectsOutputAndTheExitCode) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 7"};
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->Describe(1), "exit 7: err");
}

TEST(SubprocessTest, FullReadsEndingMidLineNeverSplitALine) {
  // The reader is slow at first: the pipe fills, and then each read takes 64 KB ending
  // anywhere in a line. Only a line of which more than 64 KB waits unterminated is cut.
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "seq 1 200000; head -c 70000 /dev/zero | tr '\\0' x; echo"};
  std::vector<std::string> lines;
  o.on_line = [&](int, std::string_view line) {
    if (lines.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    lines.emplace_back(line);
  };
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The 70,000-byte line comes whole when the rest of it arrives before 64 KB of it wait,
  // in two pieces when they do: which depends on the reads' timing.
  ASSERT_GE(lines.size(), 200001u);
  ASSERT_LE(lines.size(), 200002u);
  for (int i = 0; i < 200000; ++i) ASSERT_EQ(lines[i], std::to_string(i + 1)) << "line " << i;
  std::string joined;
  for (size_t i = 200000; i < lines.size(); ++i) joined += lines[i];
  EXPECT_EQ(joined, std::string(70000, 'x'));
  if (lines.size() == 200002u) {
    EXPECT_GT(lines[200000].size(), 65536u);
  }
}

TEST(SubprocessTest, AMissingWorkingDirectoryIsNamedNotTheProgram) {
  SubprocessOptions o;
  o.argv = {"/bin/pwd"};
  o.cwd = "/nonexistent-sluice-dir";
  auto r = RunSubprocess(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "cannot run /bin/pwd: its working directory /nonexistent-sluice-dir: No such file or "
            "directory");
  o.cwd = "/";
  auto fine = RunSubprocess(o);
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_EQ(fine->exit_code, 0);
}

TEST(SubprocessTest, LinesComeOneByOneWithTheLastUnterminatedOne) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "printf 'a\\nb\\n'; printf 'e\\n' >&2; printf 'tail'"};
  std::vector<std::pair<int, std::string>> lines;
  o.on_line = [&](int stream, std::string_view line) { lines.emplace_back(stream, line); };
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines.back(), (std::pair<int, std::string>{1, "tail"}));
  EXPECT_NE(std::find(lines.begin(), lines.end(), std::pair<int, std::string>{2, "e"}),
            lines.end());
}

TEST(SubprocessTest, ATimeoutEscalatesThroughTheSignalsToTheWholeGroup) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "trap '' INT TERM; sleep 30 & wait; sleep 30"};
  o.timeout_s = 0.2;
  o.stop_signals = {SIGINT, SIGTERM, SIGKILL};
  o.grace_s = 0.1;
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_LT(r->elapsed_s, 3);
}

TEST(SubprocessTest, WhatACommandLeavesBehindDoesNotHoldItsEnd) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "sleep 30 & echo started"};
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out, "started\n");
  EXPECT_LT(r->elapsed_s, 3);
}

TEST(SubprocessTest, ACommandThatCannotStartIsUnavailable) {
  SubprocessOptions o;
  o.argv = {"/nonexistent/command"};
  auto r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace sluice
