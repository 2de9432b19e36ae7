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

TEST(SubprocessTest, StdoutStreamedPastTheOutputLimitAndStoppedWhenTheReaderSaysSo) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "head -c 3000000 /dev/zero; echo done >&2"};
  o.max_output_bytes = 1 << 20;  // collected output only: the streamed stdout has no limit
  size_t got = 0;
  o.on_stdout = [&](std::string_view bytes) {
    got += bytes.size();
    return true;
  };
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(got, 3000000u);
  EXPECT_EQ(r->out, "");
  EXPECT_EQ(r->err, "done\n");

  // The reader says stop: the command's group is killed (it would run an hour otherwise).
  o.argv = {"/bin/sh", "-c", "while true; do echo x; done"};
  int calls = 0;
  o.on_stdout = [&](std::string_view) { return ++calls < 3; };
  auto started = std::chrono::steady_clock::now();
  auto stopped = RunSubprocess(o);
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(stopped->signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
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
