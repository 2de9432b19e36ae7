// TaskScheduler over a real SQLite store and a scripted backend.
#include "engine/task_scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "core/test_util.h"
#include "engine/task_runs.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// Each Fetch answers from `script` (by call number); records the args it was given.
class ScriptedBackend : public Backend {
 public:
  std::function<Result<std::vector<TaskItem>>(int call, const FetchRequest&)> script;
  std::mutex mu;
  std::vector<std::string> args_seen;
  std::atomic<int> calls{0};

  std::string_view name() const override { return "fake"; }
  std::vector<std::string> categories() const override { return {"thing"}; }
  Status Validate(const std::string&) const override { return Status::Ok(); }
  Result<std::vector<TaskItem>> Fetch(const FetchRequest& r) override {
    int call = calls.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(mu);
      args_seen.push_back(r.args);
    }
    return script(call, r);
  }
};

TaskItem ItemAt(const std::string& uuid, int64_t micros) {
  return TaskItem{uuid, micros, "{\"id\":\"" + uuid + "\"}", 0};
}

class TaskSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore_(); }
  void OpenStore_() {
    auto s = OpenStore("sqlite:" + dir_.Sub("t.db"));
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  void Start(TaskOptions o = {}) {
    auto b = std::make_unique<ScriptedBackend>();
    backend_ = b.get();
    backend_->script = script_;
    std::vector<std::unique_ptr<Backend>> backends;
    backends.push_back(std::move(b));
    o.retry_delay_s = o.retry_delay_s == 10 ? 0.05 : o.retry_delay_s;
    sched_ = std::make_unique<TaskScheduler>(o, store_.get(), std::move(backends), Clock::Real());
    ASSERT_TRUE(sched_->Start().ok());
  }
  Task NewTask(const std::string& id, int64_t delay = 0, int max_retries = 3, int max_age = 0) {
    Task t;
    t.task_id = id;
    t.backend = "fake";
    t.category = "thing";
    t.backend_args = R"({"from_date":"2000-01-01T00:00:00.000000Z"})";
    t.schedule.delay_s = delay;
    t.schedule.max_retries = max_retries;
    t.schedule.max_age = max_age;
    return t;
  }
  // Waits until the stored task satisfies `pred` (5 s at most).
  Task WaitFor(const std::string& id, const std::function<bool(const Task&)>& pred) {
    for (int i = 0; i < 500; ++i) {
      auto t = store_->GetTask(id);
      if (t.ok() && pred(*t)) return *t;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "task " << id << " never reached the expected state";
    return *store_->GetTask(id);
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<TaskScheduler> sched_;
  ScriptedBackend* backend_ = nullptr;
  std::function<Result<std::vector<TaskItem>>(int, const FetchRequest&)> script_;
};

TEST_F(TaskSchedulerTest, SuccessAdvancesTheCursorAndTheNextRunStartsFromIt) {
  script_ = [](int call, const FetchRequest&) -> Result<std::vector<TaskItem>> {
    int64_t base = 1'700'000'000'000'000;
    if (call == 0) return std::vector<TaskItem>{ItemAt("a", base), ItemAt("b", base + 5'000'000)};
    return std::vector<TaskItem>{ItemAt("b", base + 5'000'000)};
  };
  Start();
  ASSERT_TRUE(sched_->Add({NewTask("t", 0, 3, 3)}).ok());
  Task t = WaitFor("t", [](const Task& t) { return t.status == TaskStatus::kCompleted; });
  EXPECT_EQ(t.age, 3);
  EXPECT_EQ(t.next_from_date, FormatTime(1'700'000'005'000'000));
  std::lock_guard<std::mutex> lock(backend_->mu);
  ASSERT_EQ(backend_->args_seen.size(), 3u);
  EXPECT_NE(backend_->args_seen[0].find("2000-01-01"), std::string::npos);
  EXPECT_NE(backend_->args_seen[1].find(FormatTime(1'700'000'005'000'000)), std::string::npos);
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 2u);  // "b" again is not a new item
  auto runs = store_->ListTaskRuns(t.seq);
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_EQ((*runs)[0].queue, "create");
  EXPECT_EQ((*runs)[1].queue, "update");
  EXPECT_NE((*runs)[1].result.find("\"fetched\":0"), std::string::npos);
}

// A backend handing items over in batches (a long git history): each batch is stored while
// the run goes on, the run's summary and the task's cursor count them all, and a run that
// fails after some batches keeps what they stored, without doubling it when run again.
TEST_F(TaskSchedulerTest, BatchesStoredWhileARunGoesOnCountInItsSummaryAndCursor) {
  int64_t base = 1'700'000'000'000'000;
  script_ = [base](int call, const FetchRequest& r) -> Result<std::vector<TaskItem>> {
    std::vector<TaskItem> first = {ItemAt("a", base), ItemAt("b", base + 9'000'000)};
    std::vector<TaskItem> second = {ItemAt("c", base + 2'000'000)};
    if (Status st = r.save(&first); !st.ok()) return st;
    if (call == 0) return Status::Unavailable("the origin went away mid-run");
    if (Status st = r.save(&second); !st.ok()) return st;
    return std::vector<TaskItem>{ItemAt("d", base + 3'000'000)};
  };
  Start();
  ASSERT_TRUE(sched_->Add({NewTask("t", 3600)}).ok());
  Task t =
      WaitFor("t", [](const Task& t) { return t.age == 2 && t.status == TaskStatus::kScheduled; });
  EXPECT_EQ(t.num_failures, 0);
  EXPECT_EQ(t.next_from_date, FormatTime(base + 9'000'000));  // the newest of every batch
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 4u);
  auto runs = store_->ListTaskRuns(t.seq);
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].status, RunStatus::kFailed);
  EXPECT_NE((*runs)[0].log.find("storing 2 items (0 stored before)"), std::string::npos);
  EXPECT_EQ((*runs)[1].status, RunStatus::kFinished);
  EXPECT_NE((*runs)[1].log.find("storing 1 items (2 stored before)"), std::string::npos);
  // "a" and "b" came again: already stored by the failed run.
  EXPECT_NE((*runs)[1].result.find("\"fetched\":2,\"skipped\":2"), std::string::npos)
      << (*runs)[1].result;
  EXPECT_NE((*runs)[1].result.find("\"last_uuid\":\"d\""), std::string::npos);
}

// Items a failed run stored in batches are exported too (as Arthur pushes items as they
// are fetched), without waiting for a run that finishes.
TEST_F(TaskSchedulerTest, ItemsOfBatchesFromAFailedRunAreExported) {
  script_ = [](int, const FetchRequest& r) -> Result<std::vector<TaskItem>> {
    std::vector<TaskItem> first = {ItemAt("a", 1), ItemAt("b", 2)};
    if (Status st = r.save(&first); !st.ok()) return st;
    return Status::Unavailable("the origin went away mid-run");
  };
  TaskOptions o;
  o.items_dir = dir_.Sub("items");
  Start(o);
  ASSERT_TRUE(sched_->Add({NewTask("t", 3600, 0)}).ok());  // no retry: it FAILS
  WaitFor("t", [](const Task& t) { return t.status == TaskStatus::kFailed; });
  std::string path = dir_.Sub("items/t.jsonl");
  for (int i = 0; i < 500 && testing::ReadAll(path).empty(); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(testing::ReadAll(path), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
}

// A commit dated past 2200 does not become the cursor: the next run's from_date would be
// refused, and every run after it failed until the task was FAILED.
TEST_F(TaskSchedulerTest, AnItemDatedOutOfRangeDoesNotMoveTheCursor) {
  int64_t base = 1'700'000'000'000'000;
  script_ = [base](int, const FetchRequest&) -> Result<std::vector<TaskItem>> {
    return std::vector<TaskItem>{ItemAt("future", kMaxTimeMicros + 1), ItemAt("now", base)};
  };
  Start();
  ASSERT_TRUE(sched_->Add({NewTask("t", 0, 3, 3)}).ok());
  Task t = WaitFor("t", [](const Task& t) { return t.status == TaskStatus::kCompleted; });
  EXPECT_EQ(t.num_failures, 0);
  EXPECT_EQ(t.next_from_date, FormatTime(base));
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 2u);
}

TEST_F(TaskSchedulerTest, FailuresRetryOnTheRetryQueueThenFailAndRescheduleStartsAgain) {
  std::atomic<bool> heal{false};
  script_ = [&heal](int, const FetchRequest&) -> Result<std::vector<TaskItem>> {
    if (heal) return std::vector<TaskItem>{};
    return Status::Unavailable("origin unreachable");
  };
  Start();
  ASSERT_TRUE(sched_->Add({NewTask("t", 0, 2)}).ok());
  Task t = WaitFor("t", [](const Task& t) { return t.status == TaskStatus::kFailed; });
  EXPECT_EQ(t.num_failures, 3);  // the first run and 2 retries
  auto runs = store_->ListTaskRuns(t.seq);
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_EQ((*runs)[1].queue, "retry");
  EXPECT_EQ((*runs)[2].error, "origin unreachable");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(store_->ListTaskRuns(t.seq)->size(), 3u);  // FAILED stays failed
  heal = true;
  auto done = sched_->Reschedule({"t", "unknown"});
  EXPECT_TRUE(done[0].second);
  EXPECT_FALSE(done[1].second);
  t = WaitFor("t", [](const Task& t) { return t.age >= 1 && t.num_failures == 0; });
  EXPECT_NE(t.status, TaskStatus::kFailed);
}

TEST_F(TaskSchedulerTest, AStuckWorkersLeaseExpiresAndItsLateResultIsDropped) {
  std::atomic<bool> release{false};
  script_ = [&release](int call, const FetchRequest&) -> Result<std::vector<TaskItem>> {
    if (call == 0) {
      while (!release) std::this_thread::sleep_for(5ms);  // stuck, never renewing its lease
      return std::vector<TaskItem>{ItemAt("late", 1)};
    }
    return std::vector<TaskItem>{ItemAt("fresh", 2)};
  };
  TaskOptions o;
  o.lease_s = 0.3;
  Start(o);
  ASSERT_TRUE(sched_->Add({NewTask("t", 3600)}).ok());
  Task t =
      WaitFor("t", [](const Task& t) { return t.age == 2 && t.status == TaskStatus::kScheduled; });
  auto runs = store_->ListTaskRuns(t.seq);
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].status, RunStatus::kFailed);
  EXPECT_NE((*runs)[0].error.find("lease expired"), std::string::npos);
  EXPECT_EQ((*runs)[1].status, RunStatus::kFinished);
  release = true;
  std::this_thread::sleep_for(200ms);
  auto items = store_->ListItems(t.seq, 0, 10);
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].uuid, "fresh");
  EXPECT_EQ(store_->GetTaskRun((*runs)[0].job_id)->status, RunStatus::kFailed);
}

TEST_F(TaskSchedulerTest, ARunStartedByADeadDaemonIsRetriedAtStart) {
  std::vector<Task> tasks = {NewTask("t", 3600)};
  ASSERT_TRUE(store_->AddTasks(&tasks).ok());
  Task t = tasks[0];
  TaskRun run;
  run.job_id = "dead-run";
  run.task_seq = t.seq;
  run.task_id = "t";
  run.job_number = 1;
  run.queue = "create";
  run.status = RunStatus::kStarted;
  run.lease_until = Clock::Real()->NowMicros() + 3'600'000'000;  // far off: void all the same
  t.status = TaskStatus::kRunning;
  t.age = 1;
  t.current_job = run.job_id;
  ASSERT_TRUE(store_->SaveTask(t, &run, nullptr).ok());
  script_ = [](int, const FetchRequest&) -> Result<std::vector<TaskItem>> {
    return std::vector<TaskItem>{ItemAt("x", 1)};
  };
  Start();
  t = WaitFor("t", [](const Task& t) { return t.age == 2 && t.status == TaskStatus::kScheduled; });
  EXPECT_EQ(t.num_failures, 0);
  auto dead = store_->GetTaskRun("dead-run");
  EXPECT_EQ(dead->status, RunStatus::kFailed);
  EXPECT_NE(dead->error.find("interrupted"), std::string::npos);
  auto runs = store_->ListTaskRuns(t.seq);
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[1].queue, "retry");
  EXPECT_EQ((*runs)[1].job_number, 2);
}

TEST_F(TaskSchedulerTest, ItemsGoToTheJsonLinesFileOnceEvenAfterACrashMidExport) {
  script_ = [](int call, const FetchRequest&) -> Result<std::vector<TaskItem>> {
    if (call == 0) return std::vector<TaskItem>{ItemAt("a", 1), ItemAt("b", 2)};
    return std::vector<TaskItem>{ItemAt("b", 2), ItemAt("c", 3)};
  };
  TaskOptions o;
  o.items_dir = dir_.Sub("items");
  Start(o);
  ASSERT_TRUE(sched_->Add({NewTask("t/1", 3600, 3, 1)}).ok());
  WaitFor("t/1", [](const Task& t) { return t.status == TaskStatus::kCompleted; });
  sched_->Stop();
  std::string path = dir_.Sub("items/t%2F1.jsonl");
  EXPECT_EQ(testing::ReadAll(path), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
  // A crash after lines were appended but before their mark was stored leaves them twice
  // unless the next export cuts them: simulate it with a half-written tail.
  {
    std::ofstream tail(path, std::ios::app);
    tail << "{\"id\":\"b\"}\n{\"id";
  }
  Task t = *store_->GetTask("t/1");
  std::vector<TaskItem> more = {ItemAt("c", 3)};
  ASSERT_TRUE(store_->SaveTask(t, nullptr, &more).ok());
  Start(o);  // exports what is missing at start
  sched_->Stop();
  EXPECT_EQ(testing::ReadAll(path), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n");
}

// Regression: a task id of 100 slashes encoded past 255 bytes and its export failed every run.
TEST_F(TaskSchedulerTest, OnlyTheNewestRunsAreKept) {
  script_ = [](int, const FetchRequest&) -> Result<std::vector<TaskItem>> {
    return std::vector<TaskItem>{};
  };
  TaskOptions o;
  o.runs_kept = 3;
  Start(o);
  ASSERT_TRUE(sched_->Add({NewTask("t", 0, 3, 12)}).ok());
  Task t = WaitFor("t", [](const Task& t) { return t.status == TaskStatus::kCompleted; });
  EXPECT_EQ(t.age, 12);
  auto runs = store_->ListTaskRuns(t.seq);
  ASSERT_TRUE(runs.ok());
  std::vector<int> numbers;
  for (const TaskRun& r : *runs) numbers.push_back(r.job_number);
  EXPECT_EQ(numbers, (std::vector<int>{10, 11, 12}));
}

TEST_F(TaskSchedulerTest, TasksPastTheBoundsAreRefusedUntilSomeAreRemovedAndRecoveredOnesCount) {
  script_ = [](int, const FetchRequest&) -> Result<std::vector<TaskItem>> {
    return std::vector<TaskItem>{};
  };
  TaskOptions o;
  o.max_tasks = 3;
  Start(o);
  ASSERT_TRUE(sched_->Add({NewTask("a", 3600), NewTask("b", 3600)}).ok());
  // A batch that does not fit is refused whole: nothing of it is stored.
  Status st = sched_->Add({NewTask("c", 3600), NewTask("d", 3600)});
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("--max-tasks 3"), std::string::npos) << st.message();
  EXPECT_FALSE(store_->GetTask("c").ok());
  ASSERT_TRUE(sched_->Add({NewTask("c", 3600)}).ok());
  EXPECT_EQ(sched_->Add({NewTask("d", 3600)}).code(), Code::kFailedPrecondition);
  // A refused id taken is not counted: the room stays.
  EXPECT_EQ(sched_->Remove({"a"})[0].second, true);
  EXPECT_EQ(sched_->Add({NewTask("b", 3600)}).code(), Code::kAlreadyExists);
  ASSERT_TRUE(sched_->Add({NewTask("d", 3600)}).ok());
  // After a restart with a lower bound, the stored tasks are all kept and counted.
  sched_->Stop();
  o.max_tasks = 2;
  Start(o);
  EXPECT_TRUE(store_->GetTask("d").ok());
  EXPECT_EQ(sched_->Add({NewTask("e", 3600)}).code(), Code::kFailedPrecondition);
  EXPECT_TRUE(sched_->Remove({"b"})[0].second);
  EXPECT_TRUE(sched_->Remove({"c"})[0].second);
  EXPECT_TRUE(sched_->Add({NewTask("e", 3600)}).ok());
  // The bytes of the tasks' fields are bounded too.
  sched_->Stop();
  o.max_tasks = 100;
  o.max_task_bytes = TaskBytes(NewTask("d", 3600)) + TaskBytes(NewTask("e", 3600)) + 100;
  Start(o);
  Task big = NewTask("big", 3600);
  big.backend_args = "{\"x\":\"" + std::string(200, 'x') + "\"}";
  st = sched_->Add({big});
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("--max-task-bytes"), std::string::npos) << st.message();
  EXPECT_TRUE(sched_->Add({NewTask("f", 3600)}).ok());
}

TEST(TaskFileNameTest, EveryIdBecomesAFileNameThatFitsAndIdsStayApart) {
  EXPECT_EQ(TaskFileName("t/1"), "t%2F1");
  EXPECT_EQ(TaskFileName(".hidden"), "%2Ehidden");
  std::string slashes(100, '/');
  std::string a = TaskFileName(slashes), b = TaskFileName(slashes + "x");
  EXPECT_LE(a.size() + 6, 255u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find('/'), std::string::npos);
  for (const std::string& id : {std::string(255, 'z'), std::string(85, '\xff')}) {
    EXPECT_LE(TaskFileName(id).size() + 6, 255u) << id;
  }
}

TEST(QueueForTest, ChosenAsArthurDoes) {
  Task t;
  EXPECT_EQ(QueueFor(t), "create");
  t.age = 1;
  EXPECT_EQ(QueueFor(t), "update");
  t.num_failures = 1;
  EXPECT_EQ(QueueFor(t), "retry");
  t.fetch_from_archive = true;
  EXPECT_EQ(QueueFor(t), "archive");
  t.schedule.queue = "mine";
  EXPECT_EQ(QueueFor(t), "mine");
}

}  // namespace
}  // namespace sluice
