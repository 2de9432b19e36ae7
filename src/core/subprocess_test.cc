// RunSubprocess with real commands.
#include "core/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

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
