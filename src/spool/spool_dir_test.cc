// SpoolDir: which names are taken, and moves that never overwrite.
#include "spool/spool_dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <set>

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

TEST(SpoolDirTest, ListsInBatchesAsItReadsAndStopsWhenAsked) {
  testing::TempDir dir;
  SpoolDir spool(Env::Default(), dir.path());
  ASSERT_TRUE(spool.Prepare().ok());
  for (int i = 0; i < 10; ++i) testing::WriteAll(spool.PathOf(std::to_string(i) + ".json"), "{}");
  std::vector<size_t> sizes;
  std::set<std::string> names;
  ASSERT_TRUE(spool
                  .ListInBatches(3,
                                 [&](std::vector<DirEntry>* batch) {
                                   sizes.push_back(batch->size());
                                   for (DirEntry& e : *batch) {
                                     if (e.type == FileType::kRegular) names.insert(e.name);
                                   }
                                   return true;
                                 })
                  .ok());
  EXPECT_EQ(names.size(), 10u);  // and the spool's own folders, listed as directories
  for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], 3u);
  int calls = 0;
  ASSERT_TRUE(spool.ListInBatches(3, [&](std::vector<DirEntry>*) { return ++calls < 2; }).ok());
  EXPECT_EQ(calls, 2);
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
  std::filesystem::create_directory(dir.Sub("spool"));
  std::filesystem::create_directory(dir.Sub("spool2"));
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
  // The report says whose file it is: another job's file of the same name is not this one's.
  EXPECT_EQ(spool.ReportedJobOf(std::string(day) + "/b.json").status().code(), Code::kNotFound);
  testing::WriteAll(dir.Sub("bad/") + day + "/b.json.error.json", R"({"job_id":2})");
  EXPECT_EQ(*spool.ReportedJobOf(std::string(day) + "/b.json"), 2);
  EXPECT_EQ(spool.FailedNameOf("b.json", 7).status().code(), Code::kNotFound);
  auto name = spool.FailedNameOf("b.json", 2);
  ASSERT_TRUE(name.ok()) << name.status().ToString();
  EXPECT_EQ(*name, std::string(day) + "/b.json");
  ASSERT_TRUE(spool.Restore(*name, "b.json").ok());
  EXPECT_TRUE(std::filesystem::exists(spool.PathOf("b.json")));
  // Names that are not a failed file: nothing moves.
  for (const std::string& bad :
       std::vector<std::string>{".", "..", "", day, std::string(day) + "/..", "../x"}) {
    EXPECT_EQ(spool.Restore(bad, "x.json").code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(std::filesystem::is_directory(dir.Sub("bad/") + day));

  SpoolDir deleting(Env::Default(), dir.Sub("spool2"), SaveDirs{"", ""});
  ASSERT_TRUE(deleting.Prepare().ok());
  testing::WriteAll(deleting.PathOf("c.json"), "{}");
  EXPECT_EQ(*deleting.Fail("c.json", 3, "{}"), "");
  EXPECT_FALSE(std::filesystem::exists(deleting.PathOf("c.json")));
}

TEST(SpoolDirTest, AMissingSpoolIsNotCreatedAndTheMissingPartIsNamed) {
  testing::TempDir dir;
  SpoolDir spool(Env::Default(), dir.Sub("nonexistent/spool"));
  Status st = spool.Prepare();
  EXPECT_TRUE(st.IsNotFound());
  EXPECT_NE(st.message().find(dir.Sub("nonexistent") + " is missing"), std::string::npos)
      << st.message();
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("nonexistent")));
}

// Regression: archive/ removed while the daemon ran made every move fail with ENOENT, which
// was taken for "the file is gone", so the file stayed and was processed again at each scan.
TEST(SpoolDirTest, AFolderDeletedUnderTheDaemonIsCreatedAgainAndTheMoveIsMade) {
  testing::TempDir dir;
  SpoolDir spool(Env::Default(), dir.path());
  ASSERT_TRUE(spool.Prepare().ok());
  std::filesystem::remove_all(spool.ArchiveDir());
  std::filesystem::remove_all(spool.FailedDir());
  testing::WriteAll(spool.PathOf("a.json"), "{}");
  testing::WriteAll(spool.PathOf("b.json"), "{");
  EXPECT_EQ(*spool.Archive("a.json", 1), "a.json");
  EXPECT_EQ(*spool.Fail("b.json", 2, "{}"), "b.json");
  EXPECT_TRUE(std::filesystem::exists(spool.ArchiveDir() + "/a.json"));
  EXPECT_TRUE(std::filesystem::exists(spool.FailedDir() + "/b.json.error.json"));
  EXPECT_TRUE(spool.Sync().ok());
}

TEST(SpoolDirTest, AFolderReplacedByASymlinkIsRefusedAndNothingLeavesTheSpool) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.Sub("spool"));
  std::filesystem::create_directory(dir.Sub("elsewhere"));
  SpoolDir spool(Env::Default(), dir.Sub("spool"));
  ASSERT_TRUE(spool.Prepare().ok());
  // Renamed away and replaced by a link after the spool was opened.
  std::filesystem::rename(spool.FailedDir(), dir.Sub("spool/failed.old"));
  std::filesystem::create_directory_symlink(dir.Sub("elsewhere"), spool.FailedDir());
  testing::WriteAll(spool.PathOf("x.json"), "{");
  auto moved = spool.Fail("x.json", 1, "{}");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  // It went to the folder held open (now failed.old), never through the link.
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("spool/failed.old/x.json")));
  EXPECT_TRUE(std::filesystem::is_empty(dir.Sub("elsewhere")));
  Status st = spool.Check();
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("symbolic link"), std::string::npos) << st.message();
  // And at start a linked folder is refused outright.
  SpoolDir again(Env::Default(), dir.Sub("spool"));
  EXPECT_EQ(again.Prepare().code(), Code::kFailedPrecondition);
  testing::WriteAll(spool.PathOf("y.json"), "{");
  EXPECT_FALSE(spool.Fail("y.json", 2, "{}").ok());
  EXPECT_TRUE(std::filesystem::is_empty(dir.Sub("elsewhere")));
  EXPECT_TRUE(std::filesystem::exists(spool.PathOf("y.json")));
}

// Regression: a name near the 255-byte limit could not get its ".error.json" (nor a ".17"
// on a clash), so its failed file stayed in the spool, its move retried forever.
TEST(SpoolDirTest, NamesNearTheLimitStillMoveWithTheirReport) {
  testing::TempDir dir;
  SpoolDir spool(Env::Default(), dir.path());
  ASSERT_TRUE(spool.Prepare().ok());
  std::string name = std::string(245, 'a') + ".json";  // 250 bytes
  testing::WriteAll(spool.PathOf(name), "{");
  auto first = spool.Fail(name, 1, "{}");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, name);
  EXPECT_LE(SpoolDir::ReportNameOf(name).size(), 255u);
  EXPECT_TRUE(std::filesystem::exists(spool.FailedDir() + "/" + SpoolDir::ReportNameOf(name)));
  testing::WriteAll(spool.PathOf(name), "{");  // the same name again: a suffix must fit too
  auto second = spool.Fail(name, 123456789, "{}");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_NE(*second, name);
  EXPECT_LE(second->size(), 255u);
  ASSERT_TRUE(spool.Restore(*second, name).ok());
  EXPECT_FALSE(std::filesystem::exists(spool.FailedDir() + "/" + SpoolDir::ReportNameOf(*second)));
  // A name of multi-byte characters is cut on a character boundary.
  std::string wide;
  for (int i = 0; i < 80; ++i) wide += "\xE2\x82\xAC";  // 240 bytes of euro signs
  std::string report = SpoolDir::ReportNameOf(wide + ".json");
  EXPECT_LE(report.size(), 255u);
  EXPECT_NE(report.find("~"), std::string::npos);
}

TEST(SpoolDirTest, ASpoolDeletedAndCreatedAgainIsReopened) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.Sub("spool"));
  SpoolDir spool(Env::Default(), dir.Sub("spool"));
  ASSERT_TRUE(spool.Prepare().ok());
  std::filesystem::remove_all(dir.Sub("spool"));
  EXPECT_TRUE(spool.Check().IsNotFound());
  std::filesystem::create_directory(dir.Sub("spool"));
  ASSERT_TRUE(spool.Check().ok());
  testing::WriteAll(spool.PathOf("z.json"), "{}");
  EXPECT_EQ(*spool.Archive("z.json", 1), "z.json");
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("spool/archive/z.json")));
}

TEST(SpoolDirTest, ASpoolCreatedAgainIsTakenOnlyOnceNoOtherDaemonHoldsIt) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.Sub("spool"));
  SpoolDir spool(Env::Default(), dir.Sub("spool"));
  spool.LockRecreated(Folders::Lock::kExclusive);
  ASSERT_TRUE(spool.Prepare().ok());
  std::filesystem::remove_all(dir.Sub("spool"));
  std::filesystem::create_directory(dir.Sub("spool"));
  // Another daemon took the new folder first.
  int other = ::open(dir.Sub("spool").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  ASSERT_EQ(::flock(other, LOCK_SH | LOCK_NB), 0);
  Status st = spool.Check();
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("another daemon runs it now"), std::string::npos);
  EXPECT_EQ(spool.generation(), 0u);
  ::close(other);
  ASSERT_TRUE(spool.Check().ok());
  EXPECT_EQ(spool.generation(), 1u);
  // Now this one holds it: another is refused.
  other = ::open(dir.Sub("spool").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_NE(::flock(other, LOCK_SH | LOCK_NB), 0);
  ::close(other);
}

}  // namespace
}  // namespace sluice
