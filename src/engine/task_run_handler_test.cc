// Task runs carried by cluster jobs: the scheduler in dispatch mode registers runs as jobs,
// TaskRunHandler runs them fenced on the job's claim, and the scheduler follows the outcome.
#include "engine/task_run_handler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "core/test_util.h"
#include "engine/task_runs.h"
#include "engine/task_scheduler.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

class ItemsBackend : public Backend {
 public:
  std::mutex mu;
  std::vector<TaskItem> items;
  Status fail;
  size_t batch = 0;  // when set: all but the last items handed to save, `batch` at a time
  std::vector<Status> saved;
  std::function<void()> before_save;  // called before each batch is handed over
  std::string_view name() const override { return "fake"; }
  std::vector<std::string> categories() const override { return {"thing"}; }
  Status Validate(const std::string&) const override { return Status::Ok(); }
  Result<std::vector<TaskItem>> Fetch(const FetchRequest& r) override {
    r.log("fetching");
    std::lock_guard<std::mutex> lock(mu);
    if (!fail.ok()) return fail;
    if (batch == 0) return items;
    size_t at = 0;
    for (; at + batch < items.size(); at += batch) {
      std::vector<TaskItem> some(items.begin() + at, items.begin() + at + batch);
      if (before_save) before_save();
      saved.push_back(r.save(&some));
      if (!saved.back().ok()) return saved.back();
    }
    return std::vector<TaskItem>(items.begin() + at, items.end());
  }
};

class TaskRunHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenStore("sqlite:" + dir_.Sub("t.db"));
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    auto b = std::make_unique<ItemsBackend>();
    backend_ = b.get();
    std::vector<std::unique_ptr<Backend>> backends;
    backends.push_back(std::move(b));
    TaskRunOptions o;
    o.owner = "worker-a";
    o.retry_delay_s = 0.05;
    o.on_events = [this](const std::vector<Event>& e) {
      std::lock_guard<std::mutex> lock(mu_);
      for (const Event& x : e) events_.push_back(x.type);
    };
    handler_ =
        std::make_unique<TaskRunHandler>(o, store_.get(), std::move(backends), Clock::Real());
  }
  void TearDown() override {
    if (sched_) sched_->Stop();
  }
  // A scheduler that registers each run as a job of the store (as a cluster's serve does).
  void StartScheduler() {
    TaskOptions o;
    o.retry_delay_s = 0.05;
    // A job checked just before the test ends it is read again soon, not 10 s later.
    o.job_check_s = 0.1;
    o.dispatch = [this](const TaskRun& run) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!dispatch_.ok()) return dispatch_;
      WriteBatch b;
      Job j;
      j.queue = run.queue;
      j.kind = kTaskJobKind;
      j.payload = TaskJobPayload(run);
      j.idempotency_key = TaskJobKey(run.job_id);
      b.new_jobs.push_back(j);
      Status st = store_->Write(&b);
      if (st.ok()) jobs_.push_back(b.new_jobs[0]);
      return st;
    };
    std::vector<std::unique_ptr<Backend>> none;
    sched_ = std::make_unique<TaskScheduler>(o, store_.get(), std::move(none), Clock::Real());
    ASSERT_TRUE(sched_->Start().ok());
  }
  Task NewTask(const std::string& id, int64_t delay = 3600) {
    Task t;
    t.task_id = id;
    t.backend = "fake";
    t.category = "thing";
    t.backend_args = R"({"from_date":"2000-01-01T00:00:00.000000Z"})";
    t.schedule.delay_s = delay;
    return t;
  }
  // The n-th job registered (waits 5 s at most).
  Job WaitJob(size_t n) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (jobs_.size() > n) return jobs_[n];
      }
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "job " << n << " never registered";
    return Job{};
  }
  Task WaitTask(const std::string& id, const std::function<bool(const Task&)>& pred) {
    for (int i = 0; i < 500; ++i) {
      auto t = store_->GetTask(id);
      if (t.ok() && pred(*t)) return *t;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "task " << id << " never reached the expected state";
    return Task{};
  }
  // Claims `job` for `owner` until `lease_us` from now (as ClaimJobs, which leaves the payload
  // to the caller).
  Job Claim(const Job& job, const std::string& owner, int64_t lease_us = 60'000'000) {
    int64_t now = Clock::Real()->NowMicros();
    auto claimed = store_->ClaimJobs({job.id}, owner, now + lease_us, now);
    EXPECT_TRUE(claimed.ok() && claimed->size() == 1);
    if (!claimed.ok() || claimed->empty()) return Job{};
    Job out = claimed->front();
    out.payload = job.payload;
    return out;
  }
  Status RunJob(const Job& job, HandlerOutput* out) {
    HandlerContext ctx;
    ctx.payload = &job.payload;
    ctx.job_id = job.id;
    ctx.claim_epoch = job.lease_epoch;
    return handler_->Run(ctx, out);
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  ItemsBackend* backend_ = nullptr;
  std::unique_ptr<TaskRunHandler> handler_;
  std::unique_ptr<TaskScheduler> sched_;
  std::mutex mu_;
  Status dispatch_;
  std::vector<Job> jobs_;
  std::vector<std::string> events_;
};

TEST_F(TaskRunHandlerTest, AWorkerRunsTheRegisteredRunAndTheSchedulerFollows) {
  backend_->items = {{"a", 1'000'000, "{\"id\":\"a\"}", 0}, {"b", 2'000'000, "{\"id\":\"b\"}", 0}};
  StartScheduler();
  ASSERT_TRUE(sched_->Add({NewTask("t1")}).ok());
  Job job = WaitJob(0);
  EXPECT_EQ(job.kind, "task");
  EXPECT_EQ(job.queue, "create");
  HandlerOutput out;
  Status st = RunJob(Claim(job, "worker-a", 1), &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(out.summary.find("\"fetched\":2"), std::string::npos) << out.summary;
  Task t = WaitTask("t1", [](const Task& x) { return x.status == TaskStatus::kScheduled; });
  EXPECT_EQ(t.age, 1);
  EXPECT_EQ(t.next_from_date, "1970-01-01T00:00:02.000000Z");
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 2u);
  auto runs = store_->ListTaskRuns(t.seq);
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].status, RunStatus::kFinished);
  EXPECT_NE((*runs)[0].log.find("started on queue create by worker-a"), std::string::npos);
  EXPECT_NE((*runs)[0].log.find("fetching"), std::string::npos);
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_EQ(events_, (std::vector<std::string>{"task.running", "task.scheduled"}));
  }
  // The job taken again before its end was written (its worker died after the run was
  // stored): the run is over, so it is skipped and nothing is doubled.
  HandlerOutput again;
  ASSERT_TRUE(RunJob(Claim(job, "worker-b"), &again).ok());
  EXPECT_NE(again.summary.find("skipped"), std::string::npos);
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 2u);
}

TEST_F(TaskRunHandlerTest, AStalledWorkersRunIsFencedOutAndTheNewHolderFinishesIt) {
  backend_->items = {{"a", 1'000'000, "{\"id\":\"a\"}", 0}};
  StartScheduler();
  ASSERT_TRUE(sched_->Add({NewTask("t1")}).ok());
  Job job = WaitJob(0);
  Job stale = Claim(job, "worker-a", 1);
  std::this_thread::sleep_for(5ms);
  Job fresh = Claim(job, "worker-b");  // worker-a stalled past its lease
  HandlerOutput out;
  Status st = RunJob(stale, &out);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  Task t = *store_->GetTask("t1");
  EXPECT_TRUE(store_->ListItems(t.seq, 0, 10)->empty());
  EXPECT_NE(t.status, TaskStatus::kRunning);  // not even its start was written
  HandlerOutput ok;
  ASSERT_TRUE(RunJob(fresh, &ok).ok());
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 1u);
  EXPECT_EQ(store_->GetTask("t1")->status, TaskStatus::kScheduled);
}

// Items handed over in batches are stored as they come, fenced on the job's claim like the
// run's end: a worker whose claim went to another stops at its next batch.
TEST_F(TaskRunHandlerTest, BatchesAreStoredFencedAndCountInTheSummary) {
  backend_->items = {{"a", 1'000'000, "{}", 0},
                     {"b", 4'000'000, "{}", 0},
                     {"c", 2'000'000, "{}", 0},
                     {"d", 3'000'000, "{}", 0},
                     {"e", 5'000'000, "{}", 0}};
  backend_->batch = 2;
  StartScheduler();
  ASSERT_TRUE(sched_->Add({NewTask("t1", 0)}).ok());  // each run due once the last ends
  Job job = WaitJob(0);
  HandlerOutput out;
  Status st = RunJob(Claim(job, "worker-a"), &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(backend_->saved.size(), 2u);
  EXPECT_NE(out.summary.find("\"fetched\":5,\"skipped\":0"), std::string::npos) << out.summary;
  EXPECT_EQ(out.objects, 5u);
  Job next = WaitJob(1);  // the next run: the first has settled
  Task t = *store_->GetTask("t1");
  EXPECT_EQ(t.next_from_date, "1970-01-01T00:00:05.000000Z");
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 5u);
  EXPECT_NE((*store_->ListTaskRuns(t.seq))[0].log.find("storing 2 items (2 stored before)"),
            std::string::npos);

  // A worker that stalls mid-run (its claim goes to another before its first batch) has
  // that batch refused by the fence; nothing of it is stored, and the holder's run counts.
  backend_->items.push_back({"f", 6'000'000, "{}", 0});
  backend_->items.push_back({"g", 7'000'000, "{}", 0});
  backend_->saved.clear();
  Job stale = Claim(next, "worker-a", 1);
  Job fresh;
  backend_->before_save = [&] {
    if (fresh.id != 0) return;
    std::this_thread::sleep_for(5ms);
    fresh = Claim(next, "worker-b");
  };
  HandlerOutput fenced;
  EXPECT_EQ(RunJob(stale, &fenced).code(), Code::kFailedPrecondition);
  ASSERT_EQ(backend_->saved.size(), 1u);
  EXPECT_EQ(backend_->saved[0].code(), Code::kFailedPrecondition);
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 5u);
  HandlerOutput ok;
  backend_->before_save = nullptr;
  ASSERT_TRUE(RunJob(fresh, &ok).ok());
  EXPECT_NE(ok.summary.find("\"fetched\":2,\"skipped\":5"), std::string::npos) << ok.summary;
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 7u);
}

TEST_F(TaskRunHandlerTest, AFailedFetchFailsTheRunAndTheTaskRetriesInItsRetryQueue) {
  backend_->fail = Status::Unavailable("git fetch failed (exit 128)");
  StartScheduler();
  ASSERT_TRUE(sched_->Add({NewTask("t1")}).ok());
  HandlerOutput out;
  Status st = RunJob(Claim(WaitJob(0), "worker-a"), &out);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);  // the job fails; the task retries
  EXPECT_EQ(out.error_code, "task_run_failed");
  EXPECT_NE(st.message().find("exit 128"), std::string::npos);
  Job retry = WaitJob(1);
  EXPECT_EQ(retry.queue, "retry");
  EXPECT_EQ(store_->GetTask("t1")->num_failures, 1);
}

TEST_F(TaskRunHandlerTest, ARunWhoseJobEndedWithoutSettlingItFailsAndIsRetried) {
  StartScheduler();
  ASSERT_TRUE(sched_->Add({NewTask("t1")}).ok());
  Job job = Claim(WaitJob(0), "worker-a");
  // Every worker it went to died: the job is a dead letter, the run never settled.
  WriteBatch b;
  JobUpdate u = UpdateOf(job);
  u.state = JobState::kFailed;
  u.error = {"dead_letter", "handed out 5 times", ""};
  u.epoch = job.lease_epoch;
  b.updates = {u};
  ASSERT_TRUE(store_->Write(&b).ok());
  Task t = WaitTask("t1", [](const Task& x) { return x.num_failures == 1; });
  auto runs = store_->ListTaskRuns(t.seq);
  ASSERT_TRUE(runs.ok() && !runs->empty());
  auto run = store_->GetTaskRun((*runs)[0].job_id);
  EXPECT_EQ(run->status, RunStatus::kFailed);
  EXPECT_NE(run->error.find("dead_letter"), std::string::npos) << run->error;
  EXPECT_EQ(WaitJob(1).queue, "retry");
}

TEST_F(TaskRunHandlerTest, ARunThatCouldNotBeRegisteredIsRegisteredOnceItCan) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    dispatch_ = Status::Unavailable("broker away");
  }
  StartScheduler();
  ASSERT_TRUE(sched_->Add({NewTask("t1")}).ok());
  std::this_thread::sleep_for(500ms);
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_TRUE(jobs_.empty());
    dispatch_ = Status::Ok();
  }
  Job job = WaitJob(0);
  EXPECT_EQ(job.idempotency_key, TaskJobKey(store_->GetTask("t1")->current_job));
  std::this_thread::sleep_for(300ms);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(jobs_.size(), 1u);
}

TEST_F(TaskRunHandlerTest, AHostilePayloadFailsTheJobWithAReason) {
  for (std::string payload : {"", "[]", "{\"task_run\":1}", "{\"task_run\":\"x\"}"}) {
    HandlerContext ctx;
    ctx.payload = &payload;
    HandlerOutput out;
    Status st = handler_->Run(ctx, &out);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << payload;
    EXPECT_EQ(out.error_code, "invalid_task_job");
  }
  std::string unknown = R"({"task_run":"r","task_id":"nobody"})";
  HandlerContext ctx;
  ctx.payload = &unknown;
  HandlerOutput out;
  ASSERT_TRUE(handler_->Run(ctx, &out).ok());
  EXPECT_NE(out.summary.find("was removed"), std::string::npos);
}

}  // namespace
}  // namespace sluice
