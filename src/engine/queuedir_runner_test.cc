// The queuedir runner's record of jobs as items come and go.
#include "engine/queuedir_runner.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "core/test_util.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

// Fails every item for good, as input that is not a job.
class RefusingHandler : public Handler {
 public:
  std::string_view kind() const override { return "refuse"; }
  const std::vector<TableSpec>& tables() const override { return tables_; }
  Status Run(const HandlerContext&, HandlerOutput*) override {
    return Status::InvalidArgument("not a job");
  }

 private:
  std::vector<TableSpec> tables_;
};

// Succeeds with every item whose name does not start with "bad", fails the others for good.
class SortingHandler : public Handler {
 public:
  std::string_view kind() const override { return "sort"; }
  const std::vector<TableSpec>& tables() const override { return tables_; }
  Status Run(const HandlerContext& ctx, HandlerOutput*) override {
    if (fs::path(ctx.path).filename().string().rfind("bad", 0) == 0) {
      return Status::InvalidArgument("not a job");
    }
    return Status::Ok();
  }

 private:
  std::vector<TableSpec> tables_;
};

// The moment an item reaches dead/, an operator runs `sluice retry-dead` (the item goes back
// into new/), and the env waits until `until` says the item was run again.
class RetryDeadAtOnceEnv : public EnvWrapper {
 public:
  RetryDeadAtOnceEnv(Env* target, std::function<bool()> until)
      : EnvWrapper(target), until_(std::move(until)) {}
  Status RenameAt(const Dir& from, std::string_view fn, const Dir& to, std::string_view tn,
                  bool replace) override {
    Status st = EnvWrapper::RenameAt(from, fn, to, tn, replace);
    bool to_dead =
        to.path().size() >= 5 && to.path().compare(to.path().size() - 5, 5, "/dead") == 0;
    if (!st.ok() || !to_dead || tn.find(".log") != std::string_view::npos || fired_.exchange(true))
      return st;
    fs::rename(to.PathOf(tn), fs::path(to.path()).parent_path() / "new" / std::string(tn));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!until_() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return st;
  }

 private:
  std::function<bool()> until_;
  std::atomic<bool> fired_{false};
};

TEST(QueuedirRunnerTest, AnItemBackFromDeadIsANewJobEvenBeforeTheOldOneIsRecorded) {
  testing::TempDir dir;
  std::string q = dir.Sub("q");
  for (const char* sub : {"new", "cur", "dead", "logs", "tmp"})
    fs::create_directories(q + "/" + sub);
  std::ofstream(q + "/new/item-1") << "{not json";
  auto store = OpenStore("sqlite:" + dir.Sub("db.sqlite"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto jobs_named = [&] {
    JobFilter f;
    f.name = "item-1";
    auto jobs = (*store)->ListJobs(f);
    return jobs.ok() ? jobs->size() : 0u;
  };
  // The first run's end is held back until the second run has a job of its own (at most 5 s).
  RetryDeadAtOnceEnv env(Env::Default(), [&] { return jobs_named() >= 2; });
  RefusingHandler handler;
  QueuedirOptions o;
  o.dir = q;
  o.workers = 2;
  o.max_retries = 0;
  QueuedirRunner runner(o, store->get(), &handler, &env, Clock::Real());
  ASSERT_TRUE(runner.Start().ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (runner.counters().dead < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  runner.Stop();
  EXPECT_EQ(runner.counters().dead, 2u);
  JobFilter f;
  f.name = "item-1";
  auto jobs = (*store)->ListJobs(f);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 2u);  // not the first job run a second time
  for (const Job& j : *jobs) {
    EXPECT_EQ(j.state, JobState::kFailed);
    EXPECT_EQ(j.attempts, 1);
  }
}

TEST(QueuedirRunnerTest, AJobWhoseFirstRecordFailedIsStoredByItsNextOne) {
  testing::TempDir dir;
  std::string q = dir.Sub("q");
  for (const char* sub : {"new", "cur", "dead", "logs", "tmp"}) {
    fs::create_directories(q + "/" + sub);
  }
  std::string db = dir.Sub("db.sqlite");
  auto store = OpenStore("sqlite:" + db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  RefusingHandler handler;
  QueuedirOptions o;
  o.dir = q;
  QueuedirRunner runner(o, store->get(), &handler, Env::Default(), Clock::Real());
  ASSERT_TRUE(runner.Start().ok());
  // Another process holds the database's write lock past the store's 5 s busy wait: the
  // job's first record (its start) fails; its last (dead) comes once the lock is gone.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::ofstream(q + "/new/item-1") << "{not json";
  std::this_thread::sleep_for(std::chrono::milliseconds(6500));
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (runner.counters().dead < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  runner.Stop();
  JobFilter f;
  f.name = "item-1";
  auto jobs = (*store)->ListJobs(f);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->front().state, JobState::kFailed);
}

TEST(QueuedirRunnerTest, WhatRanBeforeIsNotKeptInMemory) {
  // A runner that lives for months runs millions of items: what it holds is theirs in flight.
  testing::TempDir dir;
  std::string q = dir.Sub("q");
  for (const char* sub : {"new", "cur", "dead", "logs", "tmp"}) {
    fs::create_directories(q + "/" + sub);
  }
  auto store = OpenStore("sqlite:" + dir.Sub("db.sqlite"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  SortingHandler handler;
  QueuedirOptions o;
  o.dir = q;
  o.workers = 2;
  o.max_retries = 0;
  QueuedirRunner runner(o, store->get(), &handler, Env::Default(), Clock::Real());
  ASSERT_TRUE(runner.Start().ok());
  for (int i = 0; i < 40; ++i) {
    std::ofstream(q + "/new/" + (i % 4 == 0 ? "bad-" : "good-") + std::to_string(i)) << "[]";
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (runner.counters().succeeded + runner.counters().dead < 40 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(runner.counters().succeeded, 30u);
  EXPECT_EQ(runner.counters().dead, 10u);
  EXPECT_EQ(runner.JobsHeld(), 0u);
  runner.Stop();
}

}  // namespace
}  // namespace sluice
