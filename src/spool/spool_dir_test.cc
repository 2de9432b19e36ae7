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

}  // namespace
}  // namespace sluice
