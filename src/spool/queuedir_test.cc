// QueueDir's names and moves on a real directory.
#include "spool/queuedir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <ctime>
#include <filesystem>

#include "core/clock.h"
#include "core/test_util.h"

namespace sluice {
namespace {

TEST(QueueDirTest, IdsAndRetrySuffixes) {
  EXPECT_EQ(QueueDir::BaseId("1700000000-3-1234abcd"), "1700000000-3-1234abcd");
  EXPECT_EQ(QueueDir::Retries("1700000000-3-1234abcd"), 0);
  EXPECT_EQ(QueueDir::BaseId("1700000000-3-1234abcd.12"), "1700000000-3-1234abcd");
  EXPECT_EQ(QueueDir::Retries("1700000000-3-1234abcd.12"), 12);
  EXPECT_EQ(QueueDir::BaseId("job.json"), "job.json");  // not a number: part of the id
  EXPECT_EQ(QueueDir::BaseId("x."), "x.");
  EXPECT_FALSE(QueueDir::IsItemName(".hidden"));
}

TEST(QueueDirTest, ClaimRequeueKillRetryDeadAsMozillasToolsDo) {
  testing::TempDir tmp;
  QueueDir q(Env::Default(), tmp.Sub("q"));
  ASSERT_TRUE(q.Prepare().ok());
  testing::WriteAll(tmp.Sub("q/new/a"), "[\"/bin/true\"]");
  struct utimbuf old = {1000000000, 1000000000};  // 2001: older than any cleanup_time
  ASSERT_EQ(::utime(tmp.Sub("q/new/a").c_str(), &old), 0);
  ASSERT_TRUE(q.Claim("a").ok());
  EXPECT_EQ(q.Claim("a").code(), Code::kNotFound);  // claimed once only
  // As QueueDir.pop(): a claimed item is fresh, so producers' cleanup leaves it in cur/.
  struct stat st;
  ASSERT_EQ(::stat(tmp.Sub("q/cur/a").c_str(), &st), 0);
  EXPECT_GT(st.st_mtime, ::time(nullptr) - 60);
  ASSERT_EQ(::utime(tmp.Sub("q/cur/a").c_str(), &old), 0);
  ASSERT_TRUE(q.Touch("a").ok());
  ASSERT_EQ(::stat(tmp.Sub("q/cur/a").c_str(), &st), 0);
  EXPECT_GT(st.st_mtime, ::time(nullptr) - 60);
  EXPECT_TRUE(q.InCur("a"));
  auto next = q.Requeue("a", 1);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, "a.1");
  EXPECT_FALSE(q.InCur("a"));
  EXPECT_TRUE(q.Touch("a").IsNotFound());
  ASSERT_EQ(q.ListNew()->size(), 1u);
  ASSERT_TRUE(q.Claim("a.1").ok());
  ASSERT_TRUE(q.AppendLog("a.1", {"line"}).ok());
  ASSERT_TRUE(q.Kill("a.1").ok());
  EXPECT_EQ(*q.ListDead(), std::vector<std::string>{"a.1"});
  // command_runner's murder(): dead/<item>.log, the item's whole name.
  EXPECT_EQ(testing::ReadAll(tmp.Sub("q/dead/a.1.log")), "line\n");
  ASSERT_EQ(::utime(tmp.Sub("q/dead/a.1").c_str(), &old), 0);
  auto back = q.RetryDead();
  ASSERT_TRUE(back.ok());
  // retry_dead_queue: a plain mv, name and time kept; the logs in dead/ deleted.
  EXPECT_EQ(q.ListNew()->at(0).item, "a.1");
  EXPECT_EQ(q.ListNew()->at(0).mtime_ns, int64_t{1000000000} * 1000000000);
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("q/dead/a.1.log")));
}

}  // namespace
}  // namespace sluice
