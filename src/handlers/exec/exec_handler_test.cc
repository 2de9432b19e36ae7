// The exec handler with a command template (pairs): what the command is given.
#include "handlers/exec/exec_handler.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/env.h"
#include "core/json.h"
#include "core/test_util.h"

namespace sluice {
namespace {

ExecOptions Options(const std::string& ran) {
  ExecOptions o;
  o.command = {"/bin/sh", "-c", "cat \"$1\" \"$2\" > " + ran, "sh", "{json}", "{dump}"};
  return o;
}

struct TemplateRun {
  testing::TempDir dir;
  std::string ran = dir.Sub("ran");
  ExecHandler handler{Options(ran)};
  HandlerOutput out;

  Status Run() {
    HandlerContext ctx;
    ctx.path = dir.Sub("x.json");
    ctx.files = {{"json", ctx.path}, {"dump", dir.Sub("x.dump")}};
    ctx.env = Env::Default();
    ctx.clock = Clock::Real();
    out = HandlerOutput{};
    return handler.Run(ctx, &out);
  }
};

TEST(ExecHandlerTest, ATemplateIsOnlyGivenRegularFiles) {
  TemplateRun t;
  testing::WriteAll(t.dir.Sub("x.json"), "{}\n");
  testing::WriteAll(t.dir.Sub("secret"), "outside\n");
  ASSERT_EQ(::symlink(t.dir.Sub("secret").c_str(), t.dir.Sub("x.dump").c_str()), 0);
  Status st = t.Run();
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(st.IsTransient());
  EXPECT_EQ(t.out.error_code, "unreadable_file");
  EXPECT_EQ(st.message(), t.dir.Sub("x.dump") +
                              " is a symbolic link, not a regular file: a command is only "
                              "given regular files");
  EXPECT_FALSE(std::filesystem::exists(t.ran)) << "the command ran";

  ASSERT_EQ(::unlink(t.dir.Sub("x.dump").c_str()), 0);
  ASSERT_EQ(::mkfifo(t.dir.Sub("x.dump").c_str(), 0600), 0);
  EXPECT_FALSE(t.Run().ok());
  EXPECT_EQ(t.out.error_code, "unreadable_file");

  ASSERT_EQ(::unlink(t.dir.Sub("x.dump").c_str()), 0);
  EXPECT_TRUE(t.Run().IsNotFound());
  EXPECT_EQ(t.out.error_code, "file_vanished");

  testing::WriteAll(t.dir.Sub("x.dump"), "dump\n");
  ASSERT_TRUE(t.Run().ok());
  EXPECT_EQ(testing::ReadAll(t.ran), "{}\ndump\n");
}

TEST(ExecHandlerTest, OutputBeyondTheLogsBytesIsCountedNotKept) {
  // 40 MB without a newline: read in 64 KB lines, far fewer than --max-log-lines.
  ExecHandler handler{ExecOptions{}};
  std::string payload =
      R"(["/bin/sh", "-c", "printf first; head -c 40000000 /dev/zero | tr '\\0' x; echo last"])";
  HandlerContext ctx;
  ctx.payload = &payload;
  ctx.env = Env::Default();
  ctx.clock = Clock::Real();
  HandlerOutput out;
  Status st = handler.Run(ctx, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  size_t bytes = 0;
  std::string counted;
  for (const std::string& line : out.log) {
    bytes += line.size();
    if (line.find("lines of output not kept here") != std::string::npos) counted = line;
  }
  EXPECT_LE(bytes, ExecOptions::kMaxLogBytes + 4096);
  // Each half stops short of its 8 MB by less than one piece, and a piece is up to 128 KB
  // (cut once more than 64 KB waits, after a read of up to 64 KB).
  EXPECT_GE(bytes, ExecOptions::kMaxLogBytes - 4 * 65536);
  EXPECT_LT(out.log.size(), 1000u);
  EXPECT_NE(counted.find("and 16 MB, the first and the last]"), std::string::npos) << counted;
  ASSERT_GE(out.log.size(), 3u);
  EXPECT_EQ(out.log[1].substr(0, 6), "firstx");           // after "Running ..."
  const std::string& last = out.log[out.log.size() - 2];  // before "Result: ..."
  ASSERT_GE(last.size(), 4u);
  EXPECT_EQ(last.substr(last.size() - 4), "last");
}

TEST(ExecHandlerTest, TheLogsBoundIsOnTheTextAsStored) {
  // NUL bytes are six bytes each in a JSON string: 16 MB of them kept would store 96 MB.
  ExecHandler handler{ExecOptions{}};
  std::string payload = R"(["/bin/sh", "-c", "head -c 40000000 /dev/zero; echo; echo last"])";
  HandlerContext ctx;
  ctx.payload = &payload;
  ctx.env = Env::Default();
  ctx.clock = Clock::Real();
  HandlerOutput out;
  ASSERT_TRUE(handler.Run(ctx, &out).ok());
  size_t stored = 0;
  for (const std::string& line : out.log) stored += JsonQuote(line).size() - 2;
  EXPECT_LE(stored, ExecOptions::kMaxLogBytes + 4096);
  EXPECT_GE(stored, ExecOptions::kMaxLogBytes - 4 * 6 * 65536);
  ASSERT_GE(out.log.size(), 3u);
  EXPECT_EQ(out.log[out.log.size() - 2], "last");
}

}  // namespace
}  // namespace sluice
