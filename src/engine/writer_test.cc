// Writer: rows waiting for the store are bounded; the workers that produce them wait.
#include "engine/writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/test_util.h"
#include "store/store.h"

namespace sluice {
namespace {

using testing::TempDir;

std::vector<TableSpec> Blobs() {
  TableSpec t;
  t.name = "blobs";
  t.columns = {{"id", ColumnType::kText, MergeRule::kKey},
               {"body", ColumnType::kText, MergeRule::kFirstNonNull}};
  return {t};
}

JobUpdate Succeeded(int64_t id, const std::string& key, size_t bytes) {
  JobUpdate u;
  u.job_id = id;
  u.state = JobState::kSucceeded;
  u.attempts = 1;
  u.finished_at = 200;
  u.rows.push_back(ObjectRow{0, {key, std::string(bytes, 'x')}});
  return u;
}

TEST(WriterTest, AWorkerWaitsWhileTheRowsQueuedFillTheBound) {
  TempDir dir;
  auto store = OpenStore("sqlite:" + dir.Sub("db.sqlite"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->DefineTables(Blobs()).ok());
  std::mutex commit_order;  // held by the test: the writer cannot commit
  std::atomic<int> committed_updates{0};
  Writer writer(
      store->get(), 1024,
      [&](WriteBatch& c, std::vector<Job>&) { committed_updates += c.updates.size(); },
      Env::Default(), Clock::Real(), RetentionOptions{}, &commit_order);
  writer.Start();
  std::vector<Job> jobs;
  for (int i = 1; i <= 3; ++i) {
    Job j;
    j.id = i;
    j.kind = "blob";
    j.spool = "/spool";
    j.name = "f" + std::to_string(i) + ".json";
    j.created_at = 100;
    jobs.push_back(j);
  }
  writer.AddJobs(jobs);
  std::unique_lock<std::mutex> hold(commit_order);

  size_t big = Writer::kMaxRowBytes / 2 + 1;
  writer.Update(Succeeded(1, "a", big));  // under the bound: queued at once
  writer.Update(Succeeded(2, "b", big));  // the bound is not reached yet: queued at once
  std::atomic<bool> third_queued{false};
  std::thread worker([&] {
    writer.Update(Succeeded(3, "c", 10));
    third_queued = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(third_queued.load()) << "queued over the bound while nothing could commit";

  hold.unlock();  // the store takes the rows; the waiting worker goes on
  worker.join();
  EXPECT_TRUE(third_queued.load());
  writer.StopAndDrain();
  EXPECT_EQ(committed_updates.load(), 3);
  auto rows = (*store)->ScanRows(0, "", 10);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ(std::get<std::string>((*rows)[0].values[1]).size(), big);
}

TEST(WriterTest, UpdatesWithoutRowsNeverWait) {
  TempDir dir;
  auto store = OpenStore("sqlite:" + dir.Sub("db.sqlite"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->DefineTables(Blobs()).ok());
  std::mutex commit_order;
  Writer writer(
      store->get(), 1024, [](WriteBatch&, std::vector<Job>&) {}, Env::Default(), Clock::Real(),
      RetentionOptions{}, &commit_order);
  writer.Start();
  Job j;
  j.id = 1;
  j.kind = "blob";
  j.spool = "/spool";
  j.name = "f.json";
  j.created_at = 100;
  writer.AddJobs({j});
  std::unique_lock<std::mutex> hold(commit_order);
  writer.Update(Succeeded(1, "a", Writer::kMaxRowBytes * 2));
  std::atomic<bool> queued{false};
  std::thread other([&] {
    JobUpdate log_line;  // a claim, a log line: queued whatever the rows waiting
    log_line.job_id = 1;
    log_line.state = JobState::kRunning;
    writer.Update(std::move(log_line));
    queued = true;
  });
  for (int i = 0; i < 500 && !queued.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(queued.load()) << "an update without rows waited for the rows ahead of it";
  hold.unlock();
  other.join();
  writer.StopAndDrain();
  EXPECT_EQ(writer.Pending(), 0u);
}

}  // namespace
}  // namespace sluice
