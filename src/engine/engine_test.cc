// The engine under injected faults and after crashes: nothing lost, nothing done twice.
#include "engine/engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "core/fault_env.h"
#include "core/test_util.h"
#include "handlers/kcidb/kcidb_handler.h"
#include "store/store.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr const char* kGood =
    R"({"version": {"major": 5, "minor": 3}, "tests": [{"id": "o:t1", "origin": "o",
        "build_id": "o:b1", "status": "PASS"}]})";

class CountingObserver : public EngineObserver {
 public:
  void OnStarted(const Job&) override { started++; }
  void OnFinished(const Job&) override { finished++; }
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spool_ = dir_.Sub("spool");
    fs::create_directories(spool_);
    OpenStoreNow();
    auto h = kcidb::KcidbHandler::Create(kcidb::KcidbOptions{});
    ASSERT_TRUE(h.ok());
    handler_ = std::move(*h);
  }
  void OpenStoreNow() {
    auto s = OpenStore("sqlite:" + dir_.Sub("db.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  EngineOptions Options() {
    EngineOptions o;
    o.spool_dir = spool_;
    o.burst = true;
    o.max_workers = 2;
    o.max_attempts = 3;
    o.retry_delay_s = 0.01;
    o.retry_max_delay_s = 0.05;
    o.settle_s = 0;
    o.interval_s = 0.2;
    return o;
  }
  Status Drain(EngineOptions o) {
    Engine engine(o, store_.get(), handler_.get(), &env_, Clock::Real(), &observer_);
    Status st = engine.Start();
    if (!st.ok()) return st;
    return engine.Wait();
  }
  Job OnlyJob(const std::string& name) {
    JobFilter f;
    f.name = name;
    auto jobs = store_->ListJobs(f);
    EXPECT_TRUE(jobs.ok());
    EXPECT_EQ(jobs->size(), 1u) << name;
    return jobs->empty() ? Job{} : jobs->front();
  }
  // Registers `name` as a job in `state`, as a dead daemon would have left it.
  // `other_dev`: its file recorded under another device number (a reboot renumbered it).
  int64_t Leave(const std::string& name, JobState state, int attempts, int interruptions = 0,
                bool other_dev = false) {
    auto info = Env::Default()->Stat(spool_ + "/" + name);
    WriteBatch b;
    Job j;
    j.kind = "kcidb";
    j.spool = fs::absolute(spool_).lexically_normal().string();
    j.name = name;
    if (info.ok())
      j.file = {info->dev + (other_dev ? 1 : 0), info->ino, info->size, info->mtime_ns};
    j.max_attempts = 3;
    b.new_jobs.push_back(j);
    EXPECT_TRUE(store_->Write(&b).ok());
    WriteBatch u;
    JobUpdate up;
    up.job_id = b.new_jobs[0].id;
    up.state = state;
    up.attempts = attempts;
    up.interruptions = interruptions;
    u.updates.push_back(up);
    EXPECT_TRUE(store_->Write(&u).ok());
    // The spool was live when the daemon died.
    EXPECT_TRUE(store_->PutValue(kCleanStopNs, j.spool, "0").ok());
    return up.job_id;
  }

  testing::TempDir dir_;
  std::string spool_;
  FaultEnv env_{Env::Default()};
  CountingObserver observer_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<kcidb::KcidbHandler> handler_;
};

TEST_F(EngineTest, ReadErrorsAreRetriedAndTheJobThenSucceeds) {
  testing::WriteAll(spool_ + "/a.json", kGood);
  env_.Inject(FaultEnv::Op::kRead, EIO, "a.json", 2);
  ASSERT_TRUE(Drain(Options()).ok());
  EXPECT_TRUE(fs::exists(spool_ + "/archive/a.json"));
  Job j = OnlyJob("a.json");
  EXPECT_EQ(j.state, JobState::kSucceeded);
  EXPECT_EQ(j.attempts, 3);
  EXPECT_EQ(*store_->CountRows("tests"), 1);
}

TEST_F(EngineTest, AReadErrorOnEveryAttemptFailsTheJobWithTheLastError) {
  testing::WriteAll(spool_ + "/a.json", kGood);
  env_.Inject(FaultEnv::Op::kRead, EIO, "a.json");
  ASSERT_TRUE(Drain(Options()).ok());
  Job j = OnlyJob("a.json");
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.attempts, 3);
  EXPECT_EQ(j.error.code, "read_error");
  EXPECT_NE(j.error.message.find("gave up after 3 attempts"), std::string::npos);
  std::string report = testing::ReadAll(spool_ + "/failed/a.json.error.json");
  EXPECT_NE(report.find("\"code\":\"read_error\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"attempts\":3"), std::string::npos) << report;
}

TEST_F(EngineTest, DiskFullWritingTheReasonKeepsTheFileUntilItCanBeWritten) {
  testing::WriteAll(spool_ + "/b.json", "{not json");
  env_.Inject(FaultEnv::Op::kWrite, ENOSPC, "b.json.error.json", 2);
  ASSERT_TRUE(Drain(Options()).ok());
  EXPECT_TRUE(fs::exists(spool_ + "/failed/b.json"));
  EXPECT_TRUE(fs::exists(spool_ + "/failed/b.json.error.json"));
  EXPECT_EQ(OnlyJob("b.json").attempts, 1);
  EXPECT_EQ(env_.injected(), 2);
}

TEST_F(EngineTest, AFailingRenameIntoTheArchiveIsRetriedWithoutRunningTheJobAgain) {
  testing::WriteAll(spool_ + "/c.json", kGood);
  env_.Inject(FaultEnv::Op::kRename, EIO, "c.json", 1);
  ASSERT_TRUE(Drain(Options()).ok());
  EXPECT_TRUE(fs::exists(spool_ + "/archive/c.json"));
  EXPECT_EQ(observer_.started, 1);
  EXPECT_EQ(observer_.finished, 1);
  EXPECT_EQ(OnlyJob("c.json").attempts, 1);
}

TEST_F(EngineTest, FsyncErrorsOnTheSpoolDirectoriesLoseNothing) {
  for (int i = 0; i < 20; ++i)
    testing::WriteAll(spool_ + "/f" + std::to_string(i) + ".json", kGood);
  env_.Inject(FaultEnv::Op::kSyncDir, EIO, "", 3);
  ASSERT_TRUE(Drain(Options()).ok());
  EXPECT_EQ(std::distance(fs::directory_iterator(spool_ + "/archive"), fs::directory_iterator()),
            20);
  EXPECT_EQ(observer_.started, 20);
}

// Only the folders a batch of moves changed are fsynced (each fsync, even of an unchanged
// directory, costs the disk a cache flush): none for jobs sent over HTTP, which have no file
// (those fsyncs cost submissions over HTTP about a sixth of their rate); not failed/ when
// every job succeeded, nor archive/ when every job failed.
TEST_F(EngineTest, FsyncsGoOnlyToTheFoldersAMoveChanged) {
  EngineOptions o = Options();
  o.burst = false;
  o.max_attempts = 1;
  Engine engine(o, store_.get(), handler_.get(), &env_, Clock::Real(), &observer_);
  ASSERT_TRUE(engine.Start().ok());
  auto finished = [&](int n) {
    for (int i = 0; i < 500 && observer_.finished < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return observer_.finished.load();
  };
  env_.Inject(FaultEnv::Op::kSyncDir, EIO);  // counts every directory fsync from now on
  for (int i = 0; i < 5; ++i) {
    Job j;
    j.kind = "kcidb";
    j.payload = kGood;
    ASSERT_TRUE(engine.Submit(std::move(j)).ok());
  }
  EXPECT_EQ(finished(5), 5);
  EXPECT_EQ(env_.injected(), 0);
  env_.Clear();
  // A file that succeeds: the spool and archive/ are fsynced, failed/ is not.
  env_.Inject(FaultEnv::Op::kSyncDir, EIO, "spool/failed");
  testing::WriteAll(spool_ + "/g.json", kGood);
  EXPECT_EQ(finished(6), 6);
  EXPECT_TRUE(fs::exists(spool_ + "/archive/g.json"));
  EXPECT_EQ(env_.injected(), 0);
  env_.Clear();
  // A file that fails: failed/ is fsynced, archive/ is not.
  env_.Inject(FaultEnv::Op::kSyncDir, EIO, "spool/archive");
  env_.Inject(FaultEnv::Op::kSyncDir, EIO, "spool/failed", 1);
  testing::WriteAll(spool_ + "/b.json", "{not json");
  EXPECT_EQ(finished(7), 7);
  EXPECT_TRUE(fs::exists(spool_ + "/failed/b.json"));
  EXPECT_EQ(env_.injected(), 1);
  env_.Clear();
  engine.RequestStop();
  EXPECT_TRUE(engine.Wait().ok());
}

// A retry right after a file failed, before the mover put it in failed/: waited for when
// the caller may wait, else refused with what is going on (it said "not in failed/ any
// more", which sent people looking for a lost file).
TEST_F(EngineTest, ARetryOfAFileNotInFailedYetWaitsForItsMoveOrSaysSo) {
  EngineOptions o = Options();
  o.burst = false;
  o.max_attempts = 1;
  Engine engine(o, store_.get(), handler_.get(), &env_, Clock::Real(), &observer_);
  ASSERT_TRUE(engine.Start().ok());
  env_.Inject(FaultEnv::Op::kRename, EIO, "b.json", 3);  // moves fail for 3 s (1 s apart)
  testing::WriteAll(spool_ + "/b.json", "{not json");
  int64_t id = 0;
  for (int i = 0; i < 500 && id == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    JobFilter f;
    f.name = "b.json";
    auto jobs = store_->ListJobs(f);
    if (jobs.ok() && !jobs->empty() && jobs->front().state == JobState::kFailed) {
      id = jobs->front().id;
    }
  }
  ASSERT_NE(id, 0);
  ASSERT_TRUE(fs::exists(spool_ + "/b.json"));  // not moved yet
  bool fresh = false;
  auto now = engine.Retry(id, &fresh);
  ASSERT_FALSE(now.ok());
  EXPECT_EQ(now.status().code(), Code::kUnavailable);
  EXPECT_NE(now.status().message().find("has just ended: its file is still being moved to"),
            std::string::npos)
      << now.status().message();
  auto waited = engine.Retry(id, &fresh, nullptr, Clock::Real()->MonotonicMicros() + 10'000'000);
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_TRUE(fresh);
  EXPECT_EQ(env_.injected(), 3);
  engine.RequestStop();
  EXPECT_TRUE(engine.Wait().ok());
}

// The device number of a spool's filesystem may change with a reboot or a remount: a file
// is still the job's file if its inode, size and modification time are. Before, such jobs
// ran once more (the finished one taken for a new file, the interrupted one's file left in
// the spool at its end and taken again).
TEST_F(EngineTest, AFileIsStillItsJobsFileAfterItsDeviceNumberChanged) {
  testing::WriteAll(spool_ + "/done.json", kGood);
  testing::WriteAll(spool_ + "/cut.json", kGood);
  Leave("done.json", JobState::kSucceeded, 1, 0, true);
  Leave("cut.json", JobState::kRunning, 1, 0, true);
  ASSERT_TRUE(Drain(Options()).ok());
  EXPECT_TRUE(fs::exists(spool_ + "/archive/done.json"));
  EXPECT_TRUE(fs::exists(spool_ + "/archive/cut.json"));
  EXPECT_EQ(observer_.started, 1);  // cut.json, once
  JobFilter f;
  auto jobs = store_->ListJobs(f);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 2u);
}

TEST_F(EngineTest, AJobLeftRunningByADeadDaemonIsRequeuedAndTheInterruptionCounts) {
  testing::WriteAll(spool_ + "/r.json", kGood);
  Leave("r.json", JobState::kRunning, 3, 2);  // even with its attempts used up
  ASSERT_TRUE(Drain(Options()).ok());
  Job j = OnlyJob("r.json");
  EXPECT_EQ(j.state, JobState::kSucceeded);
  EXPECT_EQ(j.attempts, 3);
  EXPECT_EQ(j.interruptions, 3);
  EXPECT_TRUE(fs::exists(spool_ + "/archive/r.json"));
}

// Regression: every engine of a daemon recovered every unfinished HTTP job, whatever its
// kind: an exec engine ran a kcidb payload (and failed it), two engines of a kind ran it twice.
TEST_F(EngineTest, OnlyTheEngineThatTakesHttpJobsOfTheirKindRecoversThem) {
  WriteBatch b;
  Job other;
  other.kind = "exec";
  other.payload = R"(["/bin/true"])";
  other.max_attempts = 3;
  Job mine = other;
  mine.kind = "kcidb";
  mine.payload = kGood;
  b.new_jobs = {other, mine};
  ASSERT_TRUE(store_->Write(&b).ok());
  EngineOptions second = Options();
  second.takes_api_jobs = false;  // a second kcidb spool of the daemon
  ASSERT_TRUE(Drain(second).ok());
  EXPECT_EQ(store_->GetJob(b.new_jobs[0].id)->state, JobState::kQueued);
  EXPECT_EQ(store_->GetJob(b.new_jobs[1].id)->state, JobState::kQueued);
  ASSERT_TRUE(Drain(Options()).ok());
  EXPECT_EQ(store_->GetJob(b.new_jobs[0].id)->state, JobState::kQueued);  // not a kcidb job
  EXPECT_EQ(store_->GetJob(b.new_jobs[1].id)->state, JobState::kSucceeded);
}

TEST_F(EngineTest, AJobThatKeepsKillingTheDaemonFailsAsInterrupted) {
  testing::WriteAll(spool_ + "/poison.json", kGood);
  Leave("poison.json", JobState::kRunning, 1, 19);  // the 20th death with it in hand
  ASSERT_TRUE(Drain(Options()).ok());
  Job j = OnlyJob("poison.json");
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.error.code, "interrupted");
  EXPECT_EQ(observer_.started, 0);
  EXPECT_TRUE(fs::exists(spool_ + "/failed/poison.json.error.json"));
}

TEST_F(EngineTest, AFinishedJobWhoseFileWasNotMovedIsMovedAtStartNotRunAgain) {
  testing::WriteAll(spool_ + "/done.json", kGood);
  Leave("done.json", JobState::kSucceeded, 1);
  ASSERT_TRUE(Drain(Options()).ok());
  EXPECT_TRUE(fs::exists(spool_ + "/archive/done.json"));
  EXPECT_EQ(observer_.started, 0);
  EXPECT_EQ(OnlyJob("done.json").attempts, 1);
}

TEST_F(EngineTest, AQueuedJobWhoseFileVanishedFailsWithThatReason) {
  Leave("gone.json", JobState::kQueued, 0);
  ASSERT_TRUE(Drain(Options()).ok());
  Job j = OnlyJob("gone.json");
  EXPECT_EQ(j.state, JobState::kFailed);
  EXPECT_EQ(j.error.code, "file_vanished");
}

TEST_F(EngineTest, BadFilesFailAloneWhileGoodOnesInTheSameBatchSucceed) {
  for (int i = 0; i < 30; ++i) {
    testing::WriteAll(spool_ + "/g" + std::to_string(i) + ".json", i % 3 ? kGood : "[");
  }
  testing::WriteAll(spool_ + "/empty.json", "");
  ASSERT_TRUE(Drain(Options()).ok());
  auto counts = store_->CountJobsByState();
  EXPECT_EQ((*counts)["succeeded"], 20);
  EXPECT_EQ((*counts)["failed"], 10);
  EXPECT_FALSE(fs::exists(spool_ + "/empty.json"));
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

class OrderObserver : public EngineObserver {
 public:
  void OnStarted(const Job& job) override {
    std::lock_guard<std::mutex> lock(mu);
    mtimes.push_back(job.file.mtime_ns);
  }
  std::mutex mu;
  std::vector<int64_t> mtimes;
};

TEST_F(EngineTest, ABoundedBacklogStillTakesEveryFileOldestFirst) {
  for (int i = 0; i < 60; ++i) {
    std::string p = spool_ + "/b" + std::to_string(i % 7) + "-" + std::to_string(i) + ".json";
    testing::WriteAll(p, kGood);
    struct timespec times[2] = {{1'600'000'000 + i, 0}, {1'600'000'000 + i, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
  }
  EngineOptions o = Options();
  o.max_backlog = 8;
  o.max_workers = 1;
  OrderObserver order;
  Engine engine(o, store_.get(), handler_.get(), &env_, Clock::Real(), &order);
  ASSERT_TRUE(engine.Start().ok());
  ASSERT_TRUE(engine.Wait().ok());
  EXPECT_EQ(std::distance(fs::directory_iterator(spool_ + "/archive"), fs::directory_iterator()),
            60);
  ASSERT_EQ(order.mtimes.size(), 60u);
  EXPECT_TRUE(std::is_sorted(order.mtimes.begin(), order.mtimes.end()));
}

// The first try of each job hangs (never heartbeats) until released; later tries succeed.
class HangingHandler : public Handler {
 public:
  std::string_view kind() const override { return "kcidb"; }
  const std::vector<TableSpec>& tables() const override { return tables_; }
  Status Run(const HandlerContext&, HandlerOutput* out) override {
    if (calls.fetch_add(1) == 0) {
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      out->summary = R"({"try":"first"})";
      return Status::Ok();
    }
    out->summary = R"({"try":"second"})";
    return Status::Ok();
  }
  std::atomic<int> calls{0};
  std::atomic<bool> release{false};

 private:
  std::vector<TableSpec> tables_;
};

TEST_F(EngineTest, AJobWhoseWorkerStopsHeartbeatingRunsElsewhereAndTheLateResultIsDropped) {
  testing::WriteAll(spool_ + "/stuck.json", kGood);
  EngineOptions o = Options();
  o.burst = false;
  o.worker_lease_s = 0.3;
  HangingHandler hanging;
  Engine engine(o, store_.get(), &hanging, &env_, Clock::Real());
  ASSERT_TRUE(engine.Start().ok());
  auto succeeded = [&] {
    auto jobs = store_->ListJobs(JobFilter{});
    return jobs.ok() && jobs->size() == 1 && (*jobs)[0].state == JobState::kSucceeded;
  };
  for (int i = 0; i < 500 && !succeeded(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(succeeded());
  hanging.release = true;  // the stuck try ends now; its result must not count
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  engine.RequestStop();
  ASSERT_TRUE(engine.Wait().ok());
  auto job = store_->ListJobs(JobFilter{})->at(0);
  EXPECT_EQ(job.attempts, 2);  // the lost try counted
  EXPECT_EQ(job.result, R"({"try":"second"})");
  EXPECT_EQ(hanging.calls.load(), 2);
}

// Records the bytes of the files its concurrent runs hold, each time one starts.
class SizeTrackingHandler : public Handler {
 public:
  std::string_view kind() const override { return "kcidb"; }
  const std::vector<TableSpec>& tables() const override { return tables_; }
  Status Run(const HandlerContext& ctx, HandlerOutput* out) override {
    uint64_t size = std::filesystem::file_size(ctx.path);
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ += size;
      seen.insert(held_);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lock(mu_);
    held_ -= size;
    out->summary = "{}";
    return Status::Ok();
  }
  std::set<uint64_t> seen;  // read after the drain

 private:
  std::mutex mu_;
  uint64_t held_ = 0;
  std::vector<TableSpec> tables_;
};

TEST_F(EngineTest, FilesReadAtOnceStayWithinTheReadingBudgetAndALargerOneRunsAlone) {
  for (int i = 0; i < 12; ++i) {
    testing::WriteAll(spool_ + "/s" + std::to_string(i) + ".json", std::string(400, ' '));
  }
  testing::WriteAll(spool_ + "/large.json", std::string(5000, ' '));
  EngineOptions o = Options();
  o.max_workers = 6;
  o.max_reading_bytes = 1000;  // two small files at once, the large one alone
  SizeTrackingHandler tracking;
  Engine engine(o, store_.get(), &tracking, &env_, Clock::Real());
  ASSERT_TRUE(engine.Start().ok());
  ASSERT_TRUE(engine.Wait().ok());
  EXPECT_EQ(std::distance(fs::directory_iterator(spool_ + "/archive"), fs::directory_iterator()),
            13);
  // Never more than two small files at once, never the large one beside another.
  for (uint64_t held : tracking.seen) EXPECT_TRUE(held == 400 || held == 800 || held == 5000);
  EXPECT_EQ(tracking.seen.count(5000), 1u);
}

}  // namespace
}  // namespace sluice
