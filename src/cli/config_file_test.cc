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

TEST(ConfigFileTest, TrailingCommentsGoButHashesInValuesStay) {
  testing::TempDir dir;
  testing::WriteAll(dir.Sub("c.toml"),
                    "spool_dir = \"/srv/a # b\"  # the spool\nmax_workers = 4 # four\n"
                    "token_file = /etc/x#y\n[spool.a]   # first\ndir = \"/srv/s\"\n"
                    "companions = [\".dump\", \".txt\"] # pairs\n");
  auto args = ConfigFileArgs(dir.Sub("c.toml"));
  ASSERT_TRUE(args.ok()) << args.status().ToString();
  EXPECT_EQ(*args, (std::vector<std::string>{"--spool-dir=/srv/a # b", "--max-workers=4",
                                             "--token-file=/etc/x#y",
                                             "--spools-config=" + dir.Sub("c.toml")}));
  auto spools = ConfigSpoolArgs(dir.Sub("c.toml"));
  ASSERT_TRUE(spools.ok());
  ASSERT_EQ(spools->size(), 1u);
  EXPECT_EQ((*spools)[0].first, "a");
  EXPECT_EQ((*spools)[0].second,
            (std::vector<std::string>{"--spool-dir=/srv/s", "--companions=.dump,.txt"}));
}

// A typo in a section header used to make its keys the daemon's own (global) flags, and a
// key given twice silently took the second value.
TEST(ConfigFileTest, BrokenHeadersNamelessSpoolsAndRepeatsAreRefusedWithTheirLine) {
  testing::TempDir dir;
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"[spool.a\ndir = /srv/a\n", "c.toml:1: a section header ends with ']'"},
      {"[spool.a] x\ndir = /srv/a\n", "c.toml:1: a section header ends with ']'"},
      {"[spool.]\ndir = /srv/a\n", "c.toml:1: a spool section needs a name"},
      {"[spool. ]\ndir = /srv/a\n", "a spool section needs a name"},
      {"[spool.\"\"]\ndir = /srv/a\n", "a spool section needs a name"},
      {"[spool.\"a b\"]\ndir = /srv/a\n", "may hold only letters"},
      {"[spool.a|b]\ndir = /srv/a\n", "may hold only letters"},
      {"[spool.a]\ndir = /a\n[spool.b]\ndir = /b\n[spool.a]\ndir = /c\n",
       "c.toml:5: [spool.a] again (first at "},
      {"spool_dir = /a\nspool-dir = /b\n", "c.toml:2: spool-dir is given again (first at "},
      {"[serve]\nport = 1\n[sluice]\nport = 2\n", "c.toml:4: port is given again"},
      {"[spool.a]\ndir = /a\nworkers = 2\nmax_workers = 3\n", "c.toml:4: max-workers is given"},
  };
  for (const Case& c : cases) {
    testing::WriteAll(dir.Sub("c.toml"), c.text);
    auto args = ConfigFileArgs(dir.Sub("c.toml"));
    auto spools = ConfigSpoolArgs(dir.Sub("c.toml"));
    ASSERT_FALSE(args.ok()) << c.text;
    ASSERT_FALSE(spools.ok()) << c.text;
    EXPECT_EQ(args.status().code(), Code::kInvalidArgument) << c.text;
    EXPECT_NE(args.status().message().find(c.says), std::string::npos)
        << c.text << " -> " << args.status().message();
  }
  // The same key outside and in two spools' sections is fine, and so are '.', '_', '-' in a name.
  testing::WriteAll(dir.Sub("ok.toml"),
                    "workers = 2\n[spool.a]\ndir = /a\nworkers = 3\n[spool.b-2.x_y]\ndir = /b\n"
                    "workers = 4\n");
  auto spools = ConfigSpoolArgs(dir.Sub("ok.toml"));
  ASSERT_TRUE(spools.ok()) << spools.status().ToString();
  EXPECT_EQ(spools->size(), 2u);
  EXPECT_EQ((*spools)[1].first, "b-2.x_y");
}

}  // namespace
}  // namespace sluice::cli
