// QueueDir's names and moves on a real directory.
#include "spool/queuedir.h"

#include <gtest/gtest.h>

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

TEST(QueueDirTest, ClaimRequeueKillRetryDead) {
  testing::TempDir tmp;
  QueueDir q(Env::Default(), tmp.Sub("q"));
  ASSERT_TRUE(q.Prepare().ok());
  testing::WriteAll(tmp.Sub("q/new/a"), "[\"/bin/true\"]");
  ASSERT_TRUE(q.Claim("a").ok());
  EXPECT_EQ(q.Claim("a").code(), Code::kNotFound);  // claimed once only
  int64_t due = Clock::Real()->NowMicros() + 60'000'000;
  auto next = q.Requeue("a", 1, due);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, "a.1");
  auto waiting = q.ListNew();
  ASSERT_EQ(waiting->size(), 1u);
  EXPECT_EQ((*waiting)[0].due_ns / 1000, due);
  ASSERT_TRUE(q.Claim("a.1").ok());
  ASSERT_TRUE(q.AppendLog("a.1", {"line"}).ok());
  ASSERT_TRUE(q.Kill("a.1").ok());
  EXPECT_EQ(*q.ListDead(), std::vector<std::string>{"a.1"});
  EXPECT_EQ(testing::ReadAll(tmp.Sub("q/dead/a.log")), "line\n");
  auto back = q.RetryDead();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(q.ListNew()->at(0).item, "a");
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("q/dead/a.log")));
}

}  // namespace
}  // namespace sluice
