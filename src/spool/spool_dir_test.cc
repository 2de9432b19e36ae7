// SpoolDir: which names are taken, and moves that never overwrite.
#include "spool/spool_dir.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/test_util.h"

namespace sluice {
namespace {

TEST(SpoolDirTest, OnlyJsonNamesThatAreNotDotfilesAreCandidates) {
  EXPECT_TRUE(SpoolDir::IsCandidateName("submission-1.json"));
  EXPECT_TRUE(SpoolDir::IsCandidateName("a b.json"));
  EXPECT_FALSE(SpoolDir::IsCandidateName(".hidden.json"));
  EXPECT_FALSE(SpoolDir::IsCandidateName("x.json.temp"));
  EXPECT_FALSE(SpoolDir::IsCandidateName("x.temp"));
  EXPECT_FALSE(SpoolDir::IsCandidateName(".json"));
  EXPECT_FALSE(SpoolDir::IsCandidateName("x.JSON.gz"));
  EXPECT_FALSE(SpoolDir::IsCandidateName(""));
}

TEST(SpoolDirTest, ArchiveNeverOverwritesAnEarlierFileOfTheSameName) {
  testing::TempDir dir;
  SpoolDir spool(Env::Default(), dir.path());
  ASSERT_TRUE(spool.Prepare().ok());
  testing::WriteAll(spool.PathOf("a.json"), "first");
  EXPECT_EQ(*spool.Archive("a.json", 1), "a.json");
  testing::WriteAll(spool.PathOf("a.json"), "second");
  EXPECT_EQ(*spool.Archive("a.json", 2), "a.2.json");
  EXPECT_EQ(testing::ReadAll(spool.ArchiveDir() + "/a.json"), "first");
  EXPECT_EQ(testing::ReadAll(spool.ArchiveDir() + "/a.2.json"), "second");
  EXPECT_TRUE(spool.Sync().ok());
}

TEST(SpoolDirTest, FailWritesTheReasonBesideTheFile) {
  testing::TempDir dir;
  SpoolDir spool(Env::Default(), dir.path());
  ASSERT_TRUE(spool.Prepare().ok());
  testing::WriteAll(spool.PathOf("b.json"), "{");
  auto dest = spool.Fail("b.json", 7, "{\"code\":\"invalid_json\"}");
  ASSERT_TRUE(dest.ok());
  EXPECT_EQ(testing::ReadAll(spool.FailedDir() + "/b.json.error.json"),
            "{\"code\":\"invalid_json\"}");
  EXPECT_FALSE(std::filesystem::exists(spool.PathOf("b.json")));
  testing::WriteAll(spool.PathOf("b.json"), "{{");
  EXPECT_EQ(*spool.Fail("b.json", 8, "{}"), "b.8.json");
  EXPECT_TRUE(std::filesystem::exists(spool.FailedDir() + "/b.8.json.error.json"));
}

TEST(SpoolDirTest, MovingAFileThatIsGoneIsNotFound) {
  testing::TempDir dir;
  SpoolDir spool(Env::Default(), dir.path());
  ASSERT_TRUE(spool.Prepare().ok());
  EXPECT_TRUE(spool.Archive("ghost.json", 1).status().IsNotFound());
}

TEST(SpoolDirTest, SaveDirsTakeFinishedFilesIntoDatedFoldersAndRestoreFindsThem) {
  testing::TempDir dir;
  SaveDirs save{dir.Sub("ok"), dir.Sub("bad")};
  SpoolDir spool(Env::Default(), dir.Sub("spool"), save);
  ASSERT_TRUE(spool.Prepare().ok());
  testing::WriteAll(spool.PathOf("a.json"), "{}");
  testing::WriteAll(spool.PathOf("b.json"), "{");
  testing::WriteAll(spool.PathOf("b.dump"), "x");
  ASSERT_TRUE(spool.Archive("a.json", 1).ok());
  ASSERT_TRUE(spool.Fail("b.json", 2, "{}").ok());
  ASSERT_TRUE(spool.MoveCompanion("b.dump", 2, true).ok());
  ASSERT_TRUE(spool.Sync().ok());
  char day[16];
  time_t now = time(nullptr);
  strftime(day, sizeof(day), "%Y%m%d", gmtime(&now));
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("ok/") + day + "/a.json"));
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("bad/") + day + "/b.json.error.json"));
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("bad/") + day + "/b.dump"));
  auto name = spool.FailedNameOf("b.json", 2);
  ASSERT_TRUE(name.ok()) << name.status().ToString();
  EXPECT_EQ(*name, std::string(day) + "/b.json");
  ASSERT_TRUE(spool.Restore(*name, "b.json").ok());
  EXPECT_TRUE(std::filesystem::exists(spool.PathOf("b.json")));

  SpoolDir deleting(Env::Default(), dir.Sub("spool2"), SaveDirs{"", ""});
  ASSERT_TRUE(deleting.Prepare().ok());
  testing::WriteAll(deleting.PathOf("c.json"), "{}");
  EXPECT_EQ(*deleting.Fail("c.json", 3, "{}"), "");
  EXPECT_FALSE(std::filesystem::exists(deleting.PathOf("c.json")));
}

}  // namespace
}  // namespace sluice
