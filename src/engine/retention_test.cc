// Retention: ended jobs past their age go, a chunk at a time; the young, the failed (unless
// told), the unfinished and those whose file is still in the spool stay.
#include "engine/retention.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "core/test_util.h"

namespace sluice {
namespace {

using testing::TempDir;

constexpr int64_t kDay = int64_t{24} * 3600 * 1'000'000;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenStore("sqlite:" + dir_.Sub("db.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  // `n` jobs of spool files named `prefix`N that ended in `state` `days_ago` days ago.
  std::vector<Job> Ended(int n, const std::string& prefix, JobState state, int64_t days_ago,
                         FileIdentity file = {1, 2, 3, 4}) {
    WriteBatch b;
    for (int i = 0; i < n; ++i) {
      Job j;
      j.kind = "kcidb";
      j.spool = dir_.path();
      j.name = prefix + std::to_string(i) + ".json";
      j.file = file;
      j.created_at = clock_.NowMicros() - days_ago * kDay - 1000;
      b.new_jobs.push_back(j);
    }
    EXPECT_TRUE(store_->Write(&b).ok());
    WriteBatch w;
    for (const Job& j : b.new_jobs) {
      JobUpdate u = UpdateOf(j);
      u.state = state;
      u.finished_at = clock_.NowMicros() - days_ago * kDay;
      u.events.push_back(StateEvent(j, u.finished_at));
      w.updates.push_back(u);
    }
    EXPECT_TRUE(store_->Write(&w).ok());
    return b.new_jobs;
  }
  // Runs rounds until one finds nothing more to do; how many calls it took.
  int PruneAll(Retention* r) {
    int calls = 0;
    while (true) {
      ++calls;
      int64_t due = r->MaybePrune(false);
      if (due >= Retention::kEvery - 1'000'000) return calls;
      clock_.Advance(due);
    }
  }
  int64_t Count(JobState state) {
    auto counts = store_->CountJobsByState();
    EXPECT_TRUE(counts.ok());
    auto it = counts->find(std::string(StateName(state)));
    return it == counts->end() ? 0 : it->second;
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(RetentionTest, OldEndedJobsGoInChunksAndTheRestStays) {
  Ended(2500, "old", JobState::kSucceeded, 40);
  Ended(3, "cancelled", JobState::kCancelled, 40);
  Ended(5, "young", JobState::kSucceeded, 10);
  Ended(4, "failed", JobState::kFailed, 400);
  WriteBatch queued;
  queued.new_jobs.push_back(Job{});
  queued.new_jobs[0].kind = "kcidb";
  queued.new_jobs[0].created_at = 1;  // unfinished, however old
  ASSERT_TRUE(store_->Write(&queued).ok());

  RetentionOptions o;
  o.jobs.max_age_s = 30 * 24 * 3600;
  o.events.max_age_s = 1000 * 24 * 3600;  // events by their own age: not here
  Retention r(store_.get(), Env::Default(), &clock_, o);
  EXPECT_GE(PruneAll(&r), 3);  // 2,503 jobs: three chunks of 1,000
  EXPECT_EQ(Count(JobState::kSucceeded), 5);
  EXPECT_EQ(Count(JobState::kCancelled), 0);
  EXPECT_EQ(Count(JobState::kFailed), 4);  // failed jobs are kept unless told
  EXPECT_EQ(Count(JobState::kQueued), 1);
  EventFilter all;
  all.limit = 100'000;
  EXPECT_EQ(store_->ListEvents(all)->size(), 2u * (5 + 4 + 1) - 1);  // queued's one event

  // A minute later the failed jobs' own age applies once given; the young ones age too.
  RetentionOptions f = o;
  f.jobs.failed_max_age_s = 365 * 24 * 3600;
  Retention r2(store_.get(), Env::Default(), &clock_, f);
  clock_.Advance(25 * kDay);
  PruneAll(&r2);
  EXPECT_EQ(Count(JobState::kSucceeded), 0);
  EXPECT_EQ(Count(JobState::kFailed), 0);
  EXPECT_EQ(Count(JobState::kQueued), 1);
}

TEST_F(RetentionTest, AJobWhoseFileIsStillInItsSpoolStays) {
  // The daemon died between a job's end and its file's move, and stayed down past the age:
  // the row is what tells the next start the file has run.
  testing::WriteAll(dir_.Sub("kept0.json"), "{}");
  struct stat st {};
  ASSERT_EQ(::stat(dir_.Sub("kept0.json").c_str(), &st), 0);
  FileIdentity there{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                     static_cast<uint64_t>(st.st_size),
                     int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
  std::vector<Job> kept = Ended(1, "kept", JobState::kSucceeded, 40, there);
  std::vector<Job> moved = Ended(1, "moved", JobState::kSucceeded, 40);
  std::vector<Job> other = Ended(1, "other", JobState::kSucceeded, 40);
  testing::WriteAll(dir_.Sub("other0.json"), "{}");  // another file under that name now
  RetentionOptions o;
  Retention r(store_.get(), Env::Default(), &clock_, o);
  PruneAll(&r);
  EXPECT_TRUE(store_->GetJob(kept[0].id).ok()) << "its file is still in the spool";
  EXPECT_TRUE(store_->GetJob(moved[0].id).status().IsNotFound());
  EXPECT_TRUE(store_->GetJob(other[0].id).status().IsNotFound());
  // Once its file has moved, the next round (which walks from the oldest again) takes it.
  ASSERT_EQ(::unlink(dir_.Sub("kept0.json").c_str()), 0);
  clock_.Advance(Retention::kEvery);
  PruneAll(&r);
  EXPECT_TRUE(store_->GetJob(kept[0].id).status().IsNotFound());
}

TEST_F(RetentionTest, AQueuedirJobWhoseItemIsStillInCurStays) {
  // A queuedir's jobs keep no file identity; a finished item whose deletion a crash cut short
  // is still in cur/ under the name of its last attempt: <id>, <id>.0 for the first, <id>.N
  // for attempt N + 1.
  ASSERT_EQ(::mkdir(dir_.Sub("cur").c_str(), 0755), 0);
  std::vector<Job> first = Ended(3, "first", JobState::kSucceeded, 40, FileIdentity{});
  std::vector<Job> third = Ended(2, "third", JobState::kSucceeded, 40, FileIdentity{});
  WriteBatch b;
  for (Job& j : third) {
    j.attempts = 3;
    JobUpdate u = UpdateOf(j);
    u.state = JobState::kSucceeded;
    u.finished_at = clock_.NowMicros() - 40 * kDay;
    b.updates.push_back(u);
  }
  ASSERT_TRUE(store_->Write(&b).ok());
  ASSERT_EQ(store_->GetJob(third[0].id)->attempts, 3);
  testing::WriteAll(dir_.Sub("cur/" + first[0].name), "[]");
  testing::WriteAll(dir_.Sub("cur/" + first[1].name + ".0"), "[]");
  testing::WriteAll(dir_.Sub("cur/" + third[0].name + ".2"), "[]");
  testing::WriteAll(dir_.Sub("cur/" + third[1].name + ".1"), "[]");  // not its last attempt
  RetentionOptions o;
  Retention r(store_.get(), Env::Default(), &clock_, o);
  PruneAll(&r);
  EXPECT_TRUE(store_->GetJob(first[0].id).ok());
  EXPECT_TRUE(store_->GetJob(first[1].id).ok());
  EXPECT_TRUE(store_->GetJob(first[2].id).status().IsNotFound()) << "its item is gone";
  EXPECT_TRUE(store_->GetJob(third[0].id).ok());
  EXPECT_TRUE(store_->GetJob(third[1].id).status().IsNotFound());
}

TEST_F(RetentionTest, AChunkTheStoreFailedOnIsTakenAgainSoon) {
  std::vector<Job> old = Ended(3, "old", JobState::kSucceeded, 40);
  // The store refuses the delete (as a server restarting would): it is tried again after
  // kAfterFailure, not a minute later.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.Sub("db.sqlite").c_str(), &other), SQLITE_OK);
  auto exec = [other](const char* sql) {
    return sqlite3_exec(other, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  };
  ASSERT_TRUE(
      exec("CREATE TRIGGER refuse BEFORE DELETE ON jobs BEGIN "
           "SELECT RAISE(ABORT, 'refused by the test'); END"));
  Retention r(store_.get(), Env::Default(), &clock_, RetentionOptions{});
  int64_t due = r.MaybePrune(true);
  EXPECT_EQ(due, Retention::kAfterFailure);
  EXPECT_FALSE(r.CatchingUp());  // a --burst does not wait on a failing store
  EXPECT_EQ(Count(JobState::kSucceeded), 3);
  ASSERT_TRUE(exec("DROP TRIGGER refuse"));
  sqlite3_close(other);
  clock_.Advance(due);
  EXPECT_GT(r.MaybePrune(true), Retention::kAfterFailure);
  EXPECT_EQ(Count(JobState::kSucceeded), 0);
}

TEST_F(RetentionTest, OnlyThePrunerPrunes) {
  Ended(10, "old", JobState::kSucceeded, 40);
  std::atomic<bool> pruner{false};
  RetentionOptions o;
  o.pruner = &pruner;
  Retention r(store_.get(), Env::Default(), &clock_, o);
  EXPECT_EQ(r.MaybePrune(false), Retention::kNotPrunerEvery);
  EXPECT_EQ(Count(JobState::kSucceeded), 10);
  pruner = true;
  PruneAll(&r);
  EXPECT_EQ(Count(JobState::kSucceeded), 0);
}

TEST_F(RetentionTest, AnIdleWriterDeletesChunkAfterChunkABusyOneAtATenth) {
  Ended(4500, "old", JobState::kSucceeded, 40);
  RetentionOptions o;
  Retention idle(store_.get(), Env::Default(), &clock_, o);
  EXPECT_EQ(idle.MaybePrune(true), 0);  // more to come: at once
  EXPECT_EQ(Count(JobState::kSucceeded), 3500);
  EXPECT_EQ(idle.MaybePrune(true), 0);
  EXPECT_EQ(Count(JobState::kSucceeded), 2500);
  // Busy: the next chunk waits (at least 1 ms, nine times the chunk's time).
  Retention busy(store_.get(), Env::Default(), &clock_, o);
  EXPECT_GE(busy.MaybePrune(false), 1000);
  EXPECT_EQ(Count(JobState::kSucceeded), 1500);
  EXPECT_GT(busy.MaybePrune(false), 0);  // not due yet: the manual clock stood still
  EXPECT_EQ(Count(JobState::kSucceeded), 1500);
}

TEST_F(RetentionTest, NoAgeKeepsEveryJob) {
  Ended(10, "old", JobState::kSucceeded, 4000);
  RetentionOptions o;
  o.jobs.max_age_s = 0;
  Retention r(store_.get(), Env::Default(), &clock_, o);
  PruneAll(&r);
  EXPECT_EQ(Count(JobState::kSucceeded), 10);
}

}  // namespace
}  // namespace sluice
