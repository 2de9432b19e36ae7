// Config files become flags that the command line can override.
#include <gtest/gtest.h>

#include "cli/commands.h"
#include "core/test_util.h"

namespace sluice::cli {
namespace {

TEST(ConfigFileTest, KeysBecomeFlagsAndBooleansBecomeSwitches) {
  testing::TempDir dir;
  testing::WriteAll(dir.Sub("s.ini"),
                    "# comment\n[serve]\nspool_dir = /tmp/x\nmax-workers=3\nburst = true\n"
                    "no_archive = false\nlog-file = \"/var/log/s.log\"\n; other\n");
  auto args = ConfigFileArgs(dir.Sub("s.ini"));
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(*args, (std::vector<std::string>{"--spool-dir=/tmp/x", "--max-workers=3", "--burst",
                                             "--log-file=/var/log/s.log"}));
}

TEST(ConfigFileTest, MissingFileIsNotFoundAndGarbageIsInvalid) {
  testing::TempDir dir;
  EXPECT_EQ(ConfigFileArgs(dir.Sub("none.ini")).status().code(), Code::kNotFound);
  testing::WriteAll(dir.Sub("bad.ini"), "just words\n");
  EXPECT_EQ(ConfigFileArgs(dir.Sub("bad.ini")).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::cli
