// The Store conformance suite: every Store implementation must pass it. Parameterised by a
// factory so a PostgreSQL store can be added with one line.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/test_util.h"
#include "store/postgres/pg_conn.h"
#include "store/store.h"

namespace sluice {
namespace {

struct Backend {
  std::string name;
  // Opens (or reopens) the store kept under `dir`.
  std::function<Result<std::unique_ptr<Store>>(const std::string& dir)> open;
};

void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

std::vector<TableSpec> Tables() {
  TableSpec t;
  t.name = "things";
  t.columns = {{"id", ColumnType::kText, MergeRule::kKey},
               {"_timestamp", ColumnType::kText, MergeRule::kGreatest},
               {"comment", ColumnType::kText, MergeRule::kFirstNonNull},
               {"size", ColumnType::kInteger, MergeRule::kFirstNonNull}};
  return {t};
}

ObjectRow Row(const std::string& id, Value ts, Value comment, Value size) {
  return ObjectRow{0, {Value(id), std::move(ts), std::move(comment), std::move(size)}};
}

Job NewJob(const std::string& name) {
  Job j;
  j.kind = "kcidb";
  j.spool = "/spool";
  j.name = name;
  j.file = {1, 2, 3, 4};
  j.created_at = 100;
  return j;
}

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto s = GetParam().open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->DefineTables(Tables()).ok());
  }
  void Reopen() {
    store_.reset();
    auto s = GetParam().open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->DefineTables(Tables()).ok());
  }
  int64_t Add(const std::string& name) {
    WriteBatch b;
    b.new_jobs.push_back(NewJob(name));
    EXPECT_TRUE(store_->Write(&b).ok());
    return b.new_jobs[0].id;
  }
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformance, NewJobsGetIncreasingIdsAndStartQueued) {
  WriteBatch b;
  b.new_jobs = {NewJob("a.json"), NewJob("b.json")};
  ASSERT_TRUE(store_->Write(&b).ok());
  EXPECT_GT(b.new_jobs[0].id, 0);
  EXPECT_GT(b.new_jobs[1].id, b.new_jobs[0].id);
  auto j = store_->GetJob(b.new_jobs[1].id);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->name, "b.json");
  EXPECT_EQ(j->state, JobState::kQueued);
  EXPECT_EQ(j->file, (FileIdentity{1, 2, 3, 4}));
}

TEST_P(StoreConformance, ReservedJobIdBlocksAreDisjointAndAboveStoredIds) {
  int64_t stored = Add("a.json");
  auto a = store_->ReserveJobIds(10);
  auto b = store_->ReserveJobIds(10);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(*a, stored);
  EXPECT_TRUE(*b >= *a + 10 || *a >= *b + 10);
  WriteBatch w;
  w.new_jobs = {NewJob("b.json")};
  w.new_jobs[0].id = *b + 3;
  ASSERT_TRUE(store_->Write(&w).ok());
  EXPECT_EQ(w.new_jobs[0].id, *b + 3);
  Reopen();
  auto c = store_->ReserveJobIds(10);
  ASSERT_TRUE(c.ok());
  EXPECT_GT(*c, *b + 3);
}

TEST_P(StoreConformance, AFailedWriteKeepsTheIdsItsJobsCameWithAndTakesBackOnlyItsOwn) {
  // Two requests with one idempotency key in one batch: the write fails as a whole, and the
  // writer writes its halves apart. Each job must keep the id its caller answered with.
  auto ids = store_->ReserveJobIds(10);
  ASSERT_TRUE(ids.ok());
  WriteBatch b;
  b.new_jobs = {NewJob(""), NewJob(""), NewJob("c.json")};
  b.new_jobs[0].id = *ids + 1;
  b.new_jobs[1].id = *ids + 2;
  b.new_jobs[0].idempotency_key = b.new_jobs[1].idempotency_key = "key-1";
  Status st = store_->Write(&b);
  ASSERT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_EQ(b.new_jobs[0].id, *ids + 1);
  EXPECT_EQ(b.new_jobs[1].id, *ids + 2);
  EXPECT_EQ(b.new_jobs[2].id, 0);  // the store's to give, and given back
  WriteBatch first, second;
  first.new_jobs = {b.new_jobs[0]};
  second.new_jobs = {b.new_jobs[1]};
  ASSERT_TRUE(store_->Write(&first).ok());
  EXPECT_EQ(store_->Write(&second).code(), Code::kAlreadyExists);
  EXPECT_EQ(second.new_jobs[0].id, *ids + 2);
  auto earlier = store_->FindJobByIdempotencyKey("key-1");
  ASSERT_TRUE(earlier.ok() && earlier->has_value());
  EXPECT_EQ((*earlier)->id, *ids + 1);
  EXPECT_FALSE(store_->GetJob(*ids + 2).ok());
}

TEST_P(StoreConformance, RowsAndStateCommitTogetherAndABadRowRollsBackBoth) {
  int64_t id = Add("a.json");
  WriteBatch bad;
  JobUpdate u;
  u.job_id = id;
  u.state = JobState::kSucceeded;
  u.rows.push_back(Row("x:1", Value(), Value("c"), Value()));
  u.rows.push_back(ObjectRow{7, {}});  // no such table
  bad.updates.push_back(u);
  Status st = store_->Write(&bad);
  EXPECT_EQ(st.code(), Code::kInternal);
  EXPECT_EQ(store_->GetJob(id)->state, JobState::kQueued);
  EXPECT_EQ(*store_->CountRows("things"), 0);

  u.rows.pop_back();
  WriteBatch good;
  good.updates.push_back(u);
  ASSERT_TRUE(store_->Write(&good).ok());
  EXPECT_EQ(store_->GetJob(id)->state, JobState::kSucceeded);
  EXPECT_EQ(*store_->CountRows("things"), 1);
}

TEST_P(StoreConformance, UpsertKeepsFirstNonNullAndGreatestTimestamp) {
  int64_t id = Add("a.json");
  for (auto row : {Row("x:1", Value("2026-01-02"), Value(), Value(int64_t{5})),
                   Row("x:1", Value("2026-01-03"), Value("later"), Value(int64_t{9})),
                   Row("x:1", Value("2026-01-01"), Value("latest"), Value())}) {
    WriteBatch b;
    JobUpdate u;
    u.job_id = id;
    u.state = JobState::kRunning;
    u.rows.push_back(row);
    b.updates.push_back(u);
    ASSERT_TRUE(store_->Write(&b).ok());
  }
  EXPECT_EQ(*store_->CountRows("things"), 1);
  auto rows = store_->ScanRows(0, "", 10);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  const auto& v = (*rows)[0].values;
  EXPECT_EQ(std::get<std::string>(v[0]), "x:1");
  EXPECT_EQ(std::get<std::string>(v[1]), "2026-01-03");
  EXPECT_EQ(std::get<std::string>(v[2]), "later");
  EXPECT_EQ(std::get<int64_t>(v[3]), 5);
}

TEST_P(StoreConformance, ImportedRowsMergeLikeAJobsRows) {
  ASSERT_TRUE(
      store_->ImportRows({Row("i:1", Value("2026-01-01"), Value(), Value(int64_t{3}))}).ok());
  ASSERT_TRUE(store_
                  ->ImportRows({Row("i:1", Value("2026-01-02"), Value("c"), Value(int64_t{4})),
                                Row("i:2", Value(), Value(), Value())})
                  .ok());
  auto rows = store_->ScanRows(0, "", 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(std::get<std::string>((*rows)[0].values[1]), "2026-01-02");
  EXPECT_EQ(std::get<std::string>((*rows)[0].values[2]), "c");
  EXPECT_EQ(std::get<int64_t>((*rows)[0].values[3]), 3);
  EXPECT_FALSE(store_->ImportRows({ObjectRow{7, {}}}).ok());
}

TEST_P(StoreConformance, ScanRowsPagesInKeyOrder) {
  int64_t id = Add("a.json");
  WriteBatch b;
  JobUpdate u;
  u.job_id = id;
  u.state = JobState::kSucceeded;
  for (const char* key : {"b", "a", "c", "B"})
    u.rows.push_back(Row(key, Value(), Value(), Value()));
  b.updates.push_back(u);
  ASSERT_TRUE(store_->Write(&b).ok());
  auto first = store_->ScanRows(0, "", 2);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ(std::get<std::string>((*first)[0].values[0]), "B");  // bytewise order
  EXPECT_EQ(std::get<std::string>((*first)[1].values[0]), "a");
  auto rest = store_->ScanRows(0, "a", 10);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ(std::get<std::string>((*rest)[1].values[0]), "c");
}

TEST_P(StoreConformance, UnfinishedJobsAreQueuedRunningAndRetryingOnly) {
  std::vector<int64_t> ids;
  for (auto state : {JobState::kQueued, JobState::kRunning, JobState::kRetrying,
                     JobState::kSucceeded, JobState::kFailed}) {
    int64_t id = Add("f" + std::to_string(ids.size()) + ".json");
    ids.push_back(id);
    WriteBatch b;
    JobUpdate u;
    u.job_id = id;
    u.state = state;
    b.updates.push_back(u);
    ASSERT_TRUE(store_->Write(&b).ok());
  }
  auto open = store_->UnfinishedJobs();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 3u);
  EXPECT_EQ((*open)[0].id, ids[0]);
  EXPECT_EQ((*open)[2].state, JobState::kRetrying);
}

TEST_P(StoreConformance, LatestJobForFileIsTheNewest) {
  Add("same.json");
  int64_t second = Add("same.json");
  auto j = store_->LatestJobForFile("/spool", "same.json");
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE(j->has_value());
  EXPECT_EQ((*j)->id, second);
  EXPECT_FALSE(store_->LatestJobForFile("/spool", "other.json")->has_value());
}

TEST_P(StoreConformance, ListJobsFiltersAndPagesNewestFirst) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Add("p" + std::to_string(i) + ".json"));
  JobFilter f;
  f.limit = 2;
  auto page1 = store_->ListJobs(f);
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].id, ids[4]);
  f.before_id = (*page1)[1].id;
  auto page2 = store_->ListJobs(f);
  ASSERT_EQ(page2->size(), 2u);
  EXPECT_EQ((*page2)[0].id, ids[2]);
  f.kind = "nothing";
  EXPECT_TRUE(store_->ListJobs(f)->empty());
  // A bounded walk: ids from min_id up to below the cursor.
  f = JobFilter{};
  f.before_id = ids[4];
  f.min_id = ids[2];
  auto window = store_->ListJobs(f);
  ASSERT_EQ(window->size(), 2u);
  EXPECT_EQ((*window)[0].id, ids[3]);
  EXPECT_EQ((*window)[1].id, ids[2]);
  f = JobFilter{};
  f.queue = "default";
  f.kind = "kcidb";
  EXPECT_EQ(store_->ListJobs(f)->size(), 5u);
  auto by_queue = store_->CountJobsByQueue();
  ASSERT_TRUE(by_queue.ok());
  EXPECT_EQ((by_queue->at({"default", "queued"})), 5);
}

TEST_P(StoreConformance, RetriedFilesJobsLeaveTheFailureCountsAndAreMarkedOnce) {
  int64_t a = Add("a.json");
  int64_t b = Add("b.json");
  int64_t running = Add("c.json");
  WriteBatch batch;
  for (int64_t id : {a, b}) {
    JobUpdate u;
    u.job_id = id;
    u.state = JobState::kFailed;
    u.attempts = 1;
    u.finished_at = 10;
    u.error = {"schema_violation", "bad", ""};
    batch.updates.push_back(u);
  }
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_EQ(*store_->MarkRetried({a, running, 999'999}, 500), 1);
  EXPECT_EQ(store_->GetJob(a)->retried_at, 500);
  EXPECT_EQ(store_->GetJob(a)->state, JobState::kFailed);  // it stays in the history as it was
  EXPECT_EQ(store_->GetJob(b)->retried_at, 0);
  EXPECT_EQ(store_->GetJob(running)->retried_at, 0);  // not ended: left as it is
  EXPECT_EQ(*store_->MarkRetried({a, b}, 700), 1);    // b; a was marked already
  EXPECT_EQ(store_->GetJob(a)->retried_at, 500);      // the first time is kept
  EXPECT_EQ(store_->GetJob(b)->retried_at, 700);
  int64_t d = Add("d.json");
  JobUpdate u;
  u.job_id = d;
  u.state = JobState::kFailed;
  u.error = {"schema_violation", "bad", ""};
  batch = WriteBatch{};
  batch.updates.push_back(u);
  ASSERT_TRUE(store_->Write(&batch).ok());
  auto sum = store_->SummarizeJobs(1'000'000, 1);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->failures, (std::vector<std::pair<std::string, int64_t>>{{"schema_violation", 1}}));
  JobFilter f;
  f.state = JobState::kFailed;
  f.error_code = "schema_violation";
  EXPECT_EQ(store_->ListJobs(f)->size(), 3u);
  f.retried = false;
  auto open = store_->ListJobs(f);
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ(open->front().id, d);
  f.retried = true;
  EXPECT_EQ(store_->ListJobs(f)->size(), 2u);
  Reopen();
  EXPECT_EQ(store_->GetJob(b)->retried_at, 700);
}

TEST_P(StoreConformance, CommittedWritesSurviveReopen) {
  int64_t id = Add("a.json");
  ASSERT_TRUE(store_->PutValue("ns", "k", "v").ok());
  Reopen();
  EXPECT_EQ(store_->GetJob(id)->name, "a.json");
  EXPECT_EQ(**store_->GetValue("ns", "k"), "v");
  EXPECT_FALSE(store_->GetValue("ns", "missing")->has_value());
  EXPECT_TRUE(store_->CheckIntegrity().ok());
}

TEST_P(StoreConformance, ASettledValueIsTheFirstOneGiven) {
  EXPECT_EQ(*store_->SettleValue("ns", "id", "first"), "first");
  EXPECT_EQ(*store_->SettleValue("ns", "id", "second"), "first");
  EXPECT_EQ(**store_->GetValue("ns", "id"), "first");
  Reopen();
  EXPECT_EQ(*store_->SettleValue("ns", "id", "third"), "first");
}

TEST_P(StoreConformance, GetJobOfAnUnknownIdIsNotFound) {
  EXPECT_EQ(store_->GetJob(424242).status().code(), Code::kNotFound);
}

TEST_P(StoreConformance, DefineTablesAddsColumnsANewerSchemaBrings) {
  auto tables = Tables();
  tables[0].columns.push_back({"extra", ColumnType::kText, MergeRule::kFirstNonNull});
  ASSERT_TRUE(store_->DefineTables(tables).ok());
  int64_t id = Add("a.json");
  WriteBatch b;
  JobUpdate u;
  u.job_id = id;
  u.state = JobState::kSucceeded;
  u.rows.push_back(ObjectRow{0, {Value("x:1"), Value(), Value(), Value(), Value("new")}});
  b.updates.push_back(u);
  EXPECT_TRUE(store_->Write(&b).ok());
}

TEST_P(StoreConformance, EventsCommitWithTheirJobsInIdOrder) {
  WriteBatch b;
  b.new_jobs = {NewJob("a.json"), NewJob("b.json")};
  ASSERT_TRUE(store_->Write(&b).ok());
  ASSERT_EQ(b.appended.size(), 2u);  // one state event per registration
  EXPECT_EQ(b.appended[0].type, "job.queued");
  EXPECT_EQ(b.appended[0].job_id, b.new_jobs[0].id);
  EXPECT_LT(b.appended[0].id, b.appended[1].id);

  Job a = b.new_jobs[0];
  a.state = JobState::kSucceeded;
  JobUpdate u;
  u.job_id = a.id;
  u.state = a.state;
  u.events = {LogEvent(a, 200, "hello"), StateEvent(a, 200)};
  WriteBatch c;
  c.updates.push_back(u);
  ASSERT_TRUE(store_->Write(&c).ok());
  ASSERT_EQ(c.appended.size(), 2u);
  EXPECT_GT(c.appended[0].id, b.appended[1].id);

  // A rolled-back write appends nothing.
  WriteBatch bad;
  u.rows.push_back(ObjectRow{7, {}});
  bad.updates.push_back(u);
  EXPECT_FALSE(store_->Write(&bad).ok());
  EXPECT_TRUE(bad.appended.empty());

  auto all = store_->ListEvents(EventFilter{});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[2].type, "job.log");
  EXPECT_NE((*all)[2].data.find("\"line\":\"hello\""), std::string::npos);

  EventFilter of_a;
  of_a.job_id = a.id;
  of_a.after_id = b.appended[0].id;
  EXPECT_EQ(store_->ListEvents(of_a)->size(), 2u);
  EventFilter logs;
  logs.types = {"job.log"};
  EXPECT_EQ(store_->ListEvents(logs)->size(), 1u);
  EventFilter page;
  page.limit = 3;
  EXPECT_EQ(store_->ListEvents(page)->size(), 3u);
  auto range = store_->EventIdRange();
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->first, b.appended[0].id);
  EXPECT_EQ(range->second, c.appended[1].id);
}

TEST_P(StoreConformance, PruningKeepsTheNewestAndNeverReusesIds) {
  for (int i = 0; i < 10; ++i) Add("f" + std::to_string(i));  // events at ts 100
  EventRetention keep4{3600, 4};
  EXPECT_EQ(*store_->PruneEvents(keep4, 200), 6);
  EXPECT_EQ(store_->ListEvents(EventFilter{})->size(), 4u);
  auto before = *store_->EventIdRange();

  EventRetention young{1, 1000};  // everything older than one second goes
  EXPECT_EQ(*store_->PruneEvents(young, 100 + 2'000'000), 4);
  EXPECT_EQ(*store_->EventIdRange(), std::make_pair(int64_t{0}, int64_t{0}));
  Reopen();
  WriteBatch b;
  b.new_jobs = {NewJob("later")};
  ASSERT_TRUE(store_->Write(&b).ok());
  EXPECT_GT(b.appended[0].id, before.second);
}

TEST_P(StoreConformance, EndedJobsPastARetentionArePagedAndDeletedWithTheirEvents) {
  WriteBatch b;
  for (int i = 0; i < 7; ++i) b.new_jobs.push_back(NewJob("r" + std::to_string(i) + ".json"));
  ASSERT_TRUE(store_->Write(&b).ok());
  std::vector<int64_t> id;
  for (const Job& j : b.new_jobs) id.push_back(j.id);
  auto end = [&](int i, JobState state, int64_t at) {
    WriteBatch w;
    JobUpdate u = UpdateOf(b.new_jobs[i]);
    u.state = state;
    u.finished_at = at;
    u.attempts = i + 1;
    u.events.push_back(LogEvent(b.new_jobs[i], at, "ended"));
    w.updates = {u};
    ASSERT_TRUE(store_->Write(&w).ok());
  };
  // 0..2 succeeded at 1000, 1000 and 2000; 3 cancelled at 1500; 4 failed at 1200; 5 succeeded
  // at 9000 (young); 6 still queued.
  end(0, JobState::kSucceeded, 1000);
  end(1, JobState::kSucceeded, 1000);
  end(2, JobState::kSucceeded, 2000);
  end(3, JobState::kCancelled, 1500);
  end(4, JobState::kFailed, 1200);
  end(5, JobState::kSucceeded, 9000);
  const std::vector<JobState> ended = {JobState::kSucceeded, JobState::kCancelled};
  const std::vector<JobState> failed = {JobState::kFailed};
  auto ids = [](const std::vector<Job>& jobs) {
    std::vector<int64_t> out;
    for (const Job& j : jobs) out.push_back(j.id);
    return out;
  };

  // By finished_at, state and id, a page at a time from a position.
  auto page = store_->EndedJobsBefore(ended, 5000, {}, 2);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(ids(*page), (std::vector<int64_t>{id[0], id[1]}));
  EXPECT_EQ((*page)[1].name, "r1.json");
  EXPECT_EQ((*page)[1].spool, "/spool");
  EXPECT_EQ((*page)[1].file, (FileIdentity{1, 2, 3, 4}));
  EXPECT_EQ((*page)[1].finished_at, 1000);
  EXPECT_EQ((*page)[1].state, JobState::kSucceeded);
  EXPECT_EQ((*page)[1].attempts, 2);  // a queuedir's item is named by its attempt
  auto next = store_->EndedJobsBefore(ended, 5000, EndedJobsPosition::Of((*page)[0]), 10);
  EXPECT_EQ(ids(*next), (std::vector<int64_t>{id[1], id[3], id[2]}));  // a tie on finished_at
  EXPECT_EQ(ids(*store_->EndedJobsBefore(ended, 5000, EndedJobsPosition::Of((*next)[2]), 10)),
            std::vector<int64_t>{});
  EXPECT_EQ(ids(*store_->EndedJobsBefore(ended, 1500, {}, 10)),
            (std::vector<int64_t>{id[0], id[1]}));  // before 1500 only
  EXPECT_EQ(ids(*store_->EndedJobsBefore(failed, 5000, {}, 10)), std::vector<int64_t>{id[4]});

  // Deleted with their events; a job not past the given retention, or not in the states
  // given, stays whatever the ids say.
  size_t events_before = store_->ListEvents(EventFilter{})->size();
  auto gone = store_->DeleteEndedJobs({id[0], id[1], id[4], id[5], id[6]}, ended, 5000);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(*gone, 2);
  EXPECT_TRUE(store_->GetJob(id[0]).status().IsNotFound());
  EXPECT_TRUE(store_->GetJob(id[1]).status().IsNotFound());
  EXPECT_TRUE(store_->GetJob(id[4]).ok());
  EXPECT_TRUE(store_->GetJob(id[5]).ok());
  EXPECT_TRUE(store_->GetJob(id[6]).ok());
  EventFilter of0;
  of0.job_id = id[0];
  EXPECT_TRUE(store_->ListEvents(of0)->empty());
  EXPECT_EQ(store_->ListEvents(EventFilter{})->size(),
            events_before - 4);  // queued and "ended", twice
  auto counts = *store_->CountJobsByState();
  EXPECT_EQ(counts["succeeded"], 2);
  EXPECT_EQ(counts["cancelled"], 1);
  EXPECT_EQ(counts["failed"], 1);
  EXPECT_EQ(*store_->DeleteEndedJobs({}, ended, 5000), 0);

  // The ids of the jobs deleted are never given again.
  Reopen();
  EXPECT_GT(Add("later.json"), id[6]);
}

Task NewTask(const std::string& id) {
  Task t;
  t.task_id = id;
  t.backend = "git";
  t.category = "commit";
  t.backend_args = R"({"uri":"/r"})";
  return t;
}

TaskItem Item(const std::string& uuid) { return TaskItem{uuid, 1, "{\"u\":\"" + uuid + "\"}", 0}; }

TEST_P(StoreConformance, AddTasksIsAllOrNone) {
  std::vector<Task> first = {NewTask("a")};
  ASSERT_TRUE(store_->AddTasks(&first).ok());
  EXPECT_GT(first[0].seq, 0);
  std::vector<Task> second = {NewTask("b"), NewTask("a")};
  Status st = store_->AddTasks(&second);
  EXPECT_EQ(st.code(), Code::kAlreadyExists);
  EXPECT_NE(st.message().find("'a'"), std::string::npos);
  EXPECT_EQ(store_->GetTask("b").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListTasks()->size(), 1u);
  // With their events, in the same transaction: none when refused, ids set when added.
  std::vector<Event> events(2);
  for (Event& e : events) {
    e.kind = "task";
    e.type = "task.scheduled";
    e.data = "{}";
  }
  EXPECT_EQ(store_->AddTasks(&second, &events).code(), Code::kAlreadyExists);
  EXPECT_TRUE(store_->ListEvents(EventFilter{})->empty());
  std::vector<Task> third = {NewTask("c"), NewTask("d")};
  ASSERT_TRUE(store_->AddTasks(&third, &events).ok());
  EXPECT_GT(events[0].id, 0);
  EXPECT_GT(events[1].id, events[0].id);
  EXPECT_EQ(store_->ListEvents(EventFilter{})->size(), 2u);
  // The same id twice in one batch: refused whole.
  std::vector<Task> twice = {NewTask("e"), NewTask("e")};
  EXPECT_EQ(store_->AddTasks(&twice).code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->GetTask("e").status().code(), Code::kNotFound);
  // Fields stored as given, whatever characters they hold.
  Task odd = NewTask("odd \"{,}\" \\ é\n");
  odd.backend_args = R"({"uri":"/r","x":"a,b}{\"c\\"})";
  odd.archive = "{\"NULL\"}";
  odd.category = "NULL";
  odd.next_offset = 42;
  std::vector<Task> batch = {odd, NewTask("plain")};
  ASSERT_TRUE(store_->AddTasks(&batch).ok());
  auto back = store_->GetTask(odd.task_id);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->seq, batch[0].seq);
  EXPECT_EQ(back->backend_args, odd.backend_args);
  EXPECT_EQ(back->archive, odd.archive);
  EXPECT_EQ(back->category, "NULL");
  EXPECT_EQ(back->next_offset, std::optional<int64_t>(42));
  EXPECT_FALSE(store_->GetTask("plain")->next_offset.has_value());
  EXPECT_EQ(store_->GetTask("plain")->seq, batch[1].seq);
}

TEST_P(StoreConformance, SaveTaskStoresOnlyNewItemsWithTheRunAndTheCursor) {
  std::vector<Task> tasks = {NewTask("a")};
  ASSERT_TRUE(store_->AddTasks(&tasks).ok());
  Task t = tasks[0];
  TaskRun run;
  run.job_id = "j1";
  run.task_seq = t.seq;
  run.task_id = "a";
  run.job_number = 1;
  run.status = RunStatus::kFinished;
  std::vector<TaskItem> items = {Item("x"), Item("y")};
  t.next_from_date = "2026-01-01T00:00:00.000000Z";
  int new_seen = -1;
  auto settle = [&](TaskRun* r) {
    new_seen = 0;
    for (const TaskItem& i : items) new_seen += i.seq != 0;
    r->result = "{\"fetched\":" + std::to_string(new_seen) + "}";
  };
  ASSERT_TRUE(store_->SaveTask(t, &run, &items, settle).ok());
  EXPECT_EQ(new_seen, 2);
  items = {Item("y"), Item("z")};
  run.job_id = "j2";
  run.job_number = 2;
  ASSERT_TRUE(store_->SaveTask(t, &run, &items, settle).ok());
  EXPECT_EQ(new_seen, 1);
  EXPECT_EQ(items[0].seq, 0);
  EXPECT_GT(items[1].seq, 0);
  Reopen();
  auto stored = store_->ListItems(t.seq, 0, 10);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 3u);
  EXPECT_EQ((*stored)[2].uuid, "z");
  EXPECT_EQ(store_->GetTaskRun("j2")->result, "{\"fetched\":1}");
  EXPECT_EQ(store_->GetTask("a")->next_from_date, "2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(store_->ListTaskRuns(t.seq)->size(), 2u);
}

TEST_P(StoreConformance, TaskStatesAreSavedAllOrNoneWithTheirEvents) {
  std::vector<Task> tasks = {NewTask("a"), NewTask("b")};
  ASSERT_TRUE(store_->AddTasks(&tasks).ok());
  for (Task& t : tasks) {
    t.status = TaskStatus::kScheduled;
    t.next_run_at = 42;
  }
  std::vector<Event> events(2);
  for (Event& e : events) {
    e.kind = "task";
    e.type = "task.scheduled";
    e.data = "{}";
  }
  Task gone = NewTask("gone");
  gone.seq = tasks[1].seq + 1000;
  std::vector<Task> with_gone = {tasks[0], gone};
  EXPECT_EQ(store_->SaveTaskStates(with_gone, &events).code(), Code::kNotFound);
  EXPECT_EQ(store_->GetTask("a")->status, TaskStatus::kNew);
  EXPECT_TRUE(store_->ListEvents(EventFilter{})->empty());
  ASSERT_TRUE(store_->SaveTaskStates(tasks, &events).ok());
  EXPECT_EQ(store_->GetTask("a")->status, TaskStatus::kScheduled);
  EXPECT_EQ(store_->GetTask("b")->next_run_at, 42);
  EXPECT_GT(events[1].id, events[0].id);
  EXPECT_EQ(store_->ListEvents(EventFilter{})->size(), 2u);
}

TEST_P(StoreConformance, PruningATasksRunsDeletesOnlyItsOlderEndedOnes) {
  std::vector<Task> tasks = {NewTask("a"), NewTask("b")};
  ASSERT_TRUE(store_->AddTasks(&tasks).ok());
  const RunStatus states[] = {RunStatus::kFinished, RunStatus::kFailed, RunStatus::kCanceled,
                              RunStatus::kStarted,  RunStatus::kQueued, RunStatus::kFinished};
  for (const Task& t : tasks) {
    for (int n = 1; n <= 6; ++n) {
      TaskRun run;
      run.job_id = t.task_id + std::to_string(n);
      run.task_seq = t.seq;
      run.task_id = t.task_id;
      run.job_number = n;
      run.status = states[n - 1];
      run.log = "a line\n";
      ASSERT_TRUE(store_->SaveTask(t, &run, nullptr).ok());
    }
  }
  auto pruned = store_->PruneTaskRuns(tasks[0].seq, 6);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(*pruned, 3);  // 1-3 ended; 4 started and 5 queued stay, 6 is not below
  auto runs = store_->ListTaskRuns(tasks[0].seq);
  ASSERT_TRUE(runs.ok());
  std::vector<int> left;
  for (const TaskRun& r : *runs) left.push_back(r.job_number);
  EXPECT_EQ(left, (std::vector<int>{4, 5, 6}));
  EXPECT_EQ(store_->GetTaskRun("a1").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListTaskRuns(tasks[1].seq)->size(), 6u);  // another task's runs stay
  auto ids = store_->ListTaskRunIds(tasks[1].seq, 2);         // the newest two, by number
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_EQ((*ids)[0].job_id, "b5");
  EXPECT_EQ((*ids)[1].job_number, 6);
  EXPECT_TRUE((*ids)[1].log.empty());
  EXPECT_EQ(*store_->PruneTaskRuns(tasks[0].seq, 6), 0);
}

TEST_P(StoreConformance, ATaskSaveFencedOnAClaimIsDroppedOnceTheJobIsClaimedAgain) {
  std::vector<Task> tasks = {NewTask("a")};
  ASSERT_TRUE(store_->AddTasks(&tasks).ok());
  int64_t id = Add("task-run.json");
  Job first = (*store_->ClaimJobs({id}, "node-a", 2'000, 1'000))[0];
  TaskRun run;
  run.job_id = "j1";
  run.task_seq = tasks[0].seq;
  run.task_id = "a";
  run.status = RunStatus::kStarted;
  Task t = tasks[0];
  t.status = TaskStatus::kRunning;
  JobFence held{id, first.lease_epoch};
  ASSERT_TRUE(store_->SaveTask(t, &run, nullptr, nullptr, nullptr, &held).ok());
  EXPECT_EQ(store_->GetTask("a")->status, TaskStatus::kRunning);
  // Another worker claims the job (the first one stalled past its lease): the first one's
  // late save writes nothing, neither items nor run nor task.
  Job second = (*store_->ClaimJobs({id}, "node-b", 9'000, 2'001))[0];
  EXPECT_GT(second.lease_epoch, first.lease_epoch);
  std::vector<TaskItem> items = {Item("x")};
  Task late = t;
  late.status = TaskStatus::kScheduled;
  late.age = 7;
  run.status = RunStatus::kFinished;
  Status st = store_->SaveTask(late, &run, &items, nullptr, nullptr, &held);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(items[0].seq, 0);
  EXPECT_TRUE(store_->ListItems(t.seq, 0, 10)->empty());
  EXPECT_EQ(store_->GetTask("a")->age, 0);
  EXPECT_EQ(store_->GetTaskRun("j1")->status, RunStatus::kStarted);
  // The new holder's save goes through; an unknown job fences everything out.
  JobFence now{id, second.lease_epoch};
  ASSERT_TRUE(store_->SaveTask(late, &run, &items, nullptr, nullptr, &now).ok());
  EXPECT_EQ(store_->ListItems(t.seq, 0, 10)->size(), 1u);
  JobFence unknown{999'999, 1};
  EXPECT_EQ(store_->SaveTask(late, &run, nullptr, nullptr, nullptr, &unknown).code(),
            Code::kFailedPrecondition);
}

TEST_P(StoreConformance, JobsFilterBySpoolAndErrorCodeAndSummarize) {
  const int64_t kMinute = 60'000'000;
  const int64_t now = 1'000 * kMinute + 30'000'000;  // 30 s into minute 1000
  WriteBatch b;
  Job http = NewJob("");
  http.spool = "";
  http.queue = "api";
  http.created_at = 50;
  b.new_jobs = {NewJob("a.json"), NewJob("b.json"), NewJob("c.json"), http};
  b.new_jobs[0].created_at = 70;
  ASSERT_TRUE(store_->Write(&b).ok());
  auto end = [&](const Job& j, JobState state, const std::string& code, int64_t at) {
    WriteBatch w;
    JobUpdate u = UpdateOf(j);
    u.state = state;
    u.finished_at = at;
    if (!code.empty()) u.error = {code, "it broke", ""};
    w.updates = {u};
    ASSERT_TRUE(store_->Write(&w).ok());
  };
  end(b.new_jobs[1], JobState::kFailed, "invalid_json", now - 10'000'000);  // this minute
  end(b.new_jobs[2], JobState::kSucceeded, "", now - kMinute);              // the one before
  JobFilter by_code;
  by_code.error_code = "invalid_json";
  auto failed = store_->ListJobs(by_code);
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].name, "b.json");
  JobFilter http_only, spooled, named;
  http_only.spool = "";
  spooled.spool = "/spool";
  named.name = "c.json";
  auto from_http = store_->ListJobs(http_only);
  ASSERT_EQ(from_http->size(), 1u);
  EXPECT_EQ((*from_http)[0].queue, "api");
  EXPECT_EQ(store_->ListJobs(spooled)->size(), 3u);
  auto by_name = store_->ListJobs(named);
  ASSERT_EQ(by_name->size(), 1u);
  auto sum = store_->SummarizeJobs(now, 15);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->oldest_waiting, (std::map<std::string, int64_t>{{"api", 50}, {"default", 70}}));
  EXPECT_EQ(sum->failures, (std::vector<std::pair<std::string, int64_t>>{{"invalid_json", 1}}));
  ASSERT_EQ(sum->per_minute.size(), 15u);
  EXPECT_EQ(sum->per_minute.back().start, 1'000 * kMinute);
  EXPECT_EQ(sum->per_minute.back().failed, 1);
  EXPECT_EQ(sum->per_minute[13].succeeded, 1);
  int64_t total = 0;
  for (const auto& m : sum->per_minute) total += m.succeeded + m.failed;
  EXPECT_EQ(total, 2);
}

TEST_P(StoreConformance, RemovedTaskCancelsItsWaitingRunAndRefusesUpdates) {
  std::vector<Task> tasks = {NewTask("a")};
  ASSERT_TRUE(store_->AddTasks(&tasks).ok());
  TaskRun run;
  run.job_id = "j1";
  run.task_seq = tasks[0].seq;
  run.task_id = "a";
  ASSERT_TRUE(store_->SaveTask(tasks[0], &run, nullptr).ok());
  EXPECT_EQ(*store_->RemoveTasks({"a"}), std::vector<bool>{true});
  EXPECT_EQ(*store_->RemoveTasks({"a"}), std::vector<bool>{false});
  EXPECT_EQ(store_->GetTaskRun("j1")->status, RunStatus::kCanceled);
  std::vector<TaskItem> items = {Item("x")};
  EXPECT_EQ(store_->SaveTask(tasks[0], &run, &items).code(), Code::kNotFound);
  EXPECT_TRUE(store_->ListItems(tasks[0].seq, 0, 10)->empty());
  // Several at once, in one transaction: each says whether it was there.
  std::vector<Task> more = {NewTask("b"), NewTask("c")};
  ASSERT_TRUE(store_->AddTasks(&more).ok());
  auto removed = store_->RemoveTasks({"b", "nope", "c", "b"});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, (std::vector<bool>{true, false, true, false}));
  EXPECT_TRUE(store_->ListTasks()->empty());
  // Added again, it is a new task: new seq, nothing inherited.
  std::vector<Task> again = {NewTask("a")};
  ASSERT_TRUE(store_->AddTasks(&again).ok());
  EXPECT_NE(again[0].seq, tasks[0].seq);
}

// Fenced claims (schema version 2): the rules the distributed engine stands on.

TEST_P(StoreConformance, AClaimBumpsTheEpochAndOnlyTheFirstClaimWins) {
  int64_t id = Add("claim.json");
  auto first = store_->ClaimJobs({id}, "node-a", 2'000, 1'000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 1u);
  const Job& j = (*first)[0];
  EXPECT_EQ(j.state, JobState::kRunning);
  EXPECT_EQ(j.attempts, 1);
  EXPECT_EQ(j.lease_epoch, 1);
  EXPECT_EQ(j.lease_owner, "node-a");
  EXPECT_EQ(j.lease_until, 2'000);
  auto second = store_->ClaimJobs({id}, "node-b", 3'000, 1'500);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->empty());
  EXPECT_EQ(store_->GetJob(id)->lease_owner, "node-a");
}

TEST_P(StoreConformance, OnlyJobsThatMayRunNowAreClaimed) {
  int64_t later = Add("later.json");
  int64_t done = Add("done.json");
  WriteBatch b;
  JobUpdate u = UpdateOf(*store_->GetJob(later));
  u.state = JobState::kRetrying;
  u.run_at = 5'000;
  JobUpdate d = UpdateOf(*store_->GetJob(done));
  d.state = JobState::kSucceeded;
  d.finished_at = 100;
  b.updates = {u, d};
  ASSERT_TRUE(store_->Write(&b).ok());
  EXPECT_TRUE(store_->ClaimJobs({later, done}, "n", 9'000, 4'999)->empty());
  auto due = store_->ClaimJobs({later, done}, "n", 9'000, 5'000);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].id, later);
}

TEST_P(StoreConformance, AClaimWhoseLeaseRanOutIsTakenOverWithAHigherEpoch) {
  int64_t id = Add("lapse.json");
  ASSERT_EQ(store_->ClaimJobs({id}, "node-a", 2'000, 1'000)->size(), 1u);
  EXPECT_TRUE(store_->ClaimJobs({id}, "node-b", 5'000, 2'000)->empty());  // not before it ends
  auto taken = store_->ClaimJobs({id}, "node-b", 5'000, 2'001);
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ((*taken)[0].lease_epoch, 2);
  EXPECT_EQ((*taken)[0].lease_owner, "node-b");
  EXPECT_EQ((*taken)[0].attempts, 2);  // the lost try counts
}

TEST_P(StoreConformance, AReservedWaitingJobChangesOnlyIfNobodyClaimedItMeanwhile) {
  int64_t id = Add("reserve.json");
  auto r = store_->ReserveWaitingJob(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->lease_epoch, 1);  // never claimed: 0 before
  EXPECT_EQ(r->state, JobState::kQueued);
  // A change fenced on the reserved epoch applies while nobody claimed the job.
  WriteBatch cancel;
  JobUpdate u = UpdateOf(*r);
  u.state = JobState::kCancelled;
  u.finished_at = 5'000;
  u.epoch = r->lease_epoch;
  cancel.updates = {u};
  ASSERT_TRUE(store_->Write(&cancel).ok());
  EXPECT_TRUE(cancel.fenced.empty());
  EXPECT_EQ(store_->GetJob(id)->state, JobState::kCancelled);
  // Not waiting any more: refused, naming the state; unknown: NotFound.
  auto again = store_->ReserveWaitingJob(id);
  EXPECT_EQ(again.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("cancelled"), std::string::npos);
  EXPECT_TRUE(store_->ReserveWaitingJob(999'999).status().IsNotFound());
  // Reserved, then claimed by a worker before the change is written: the change is dropped.
  int64_t raced = Add("raced.json");
  Job reserved = *store_->ReserveWaitingJob(raced);
  ASSERT_EQ(store_->ClaimJobs({raced}, "node-a", 9'000, 1'000)->size(), 1u);
  WriteBatch late;
  JobUpdate v = UpdateOf(reserved);
  v.state = JobState::kCancelled;
  v.epoch = reserved.lease_epoch;
  late.updates = {v};
  ASSERT_TRUE(store_->Write(&late).ok());
  EXPECT_EQ(late.fenced, std::vector<int64_t>{raced});
  EXPECT_EQ(store_->GetJob(raced)->state, JobState::kRunning);
}

TEST_P(StoreConformance, AStaleFencedUpdateIsDroppedWithItsEventsAndRows) {
  int64_t id = Add("fenced.json");
  int64_t other = Add("other.json");
  Job a = (*store_->ClaimJobs({id}, "node-a", 2'000, 1'000))[0];
  Job b = (*store_->ClaimJobs({id}, "node-b", 9'000, 2'001))[0];
  Job o = (*store_->ClaimJobs({other}, "node-a", 9'000, 1'000))[0];
  int64_t events_before = store_->ListEvents(EventFilter{})->size();
  // node-a wakes up and reports, in one batch with a result it still holds.
  WriteBatch late;
  JobUpdate stale = UpdateOf(a);
  stale.state = JobState::kSucceeded;
  stale.finished_at = 3'000;
  stale.epoch = a.lease_epoch;
  stale.rows.push_back(Row("from-a", Value("2026-01-01"), Value("stale"), Value(int64_t{1})));
  stale.events.push_back(StateEvent(a, 3'000));
  JobUpdate fine = UpdateOf(o);
  fine.state = JobState::kSucceeded;
  fine.finished_at = 3'000;
  fine.epoch = o.lease_epoch;
  fine.events.push_back(StateEvent(o, 3'000));
  late.updates = {stale, fine};
  ASSERT_TRUE(store_->Write(&late).ok());
  EXPECT_EQ(late.fenced, std::vector<int64_t>{id});
  ASSERT_EQ(late.updates.size(), 1u);
  EXPECT_EQ(late.updates[0].job_id, other);
  EXPECT_EQ(late.appended.size(), 1u);
  EXPECT_EQ(store_->GetJob(id)->state, JobState::kRunning);
  EXPECT_EQ(store_->GetJob(id)->lease_owner, "node-b");
  EXPECT_EQ(store_->GetJob(other)->state, JobState::kSucceeded);
  EXPECT_EQ(*store_->CountRows("things"), 0);
  EXPECT_EQ(static_cast<int64_t>(store_->ListEvents(EventFilter{})->size()), events_before + 1);
  // node-b's result applies.
  WriteBatch current;
  JobUpdate ok = UpdateOf(b);
  ok.state = JobState::kSucceeded;
  ok.finished_at = 4'000;
  ok.epoch = b.lease_epoch;
  ok.rows.push_back(Row("from-b", Value("2026-01-01"), Value("current"), Value(int64_t{2})));
  current.updates = {ok};
  ASSERT_TRUE(store_->Write(&current).ok());
  EXPECT_TRUE(current.fenced.empty());
  EXPECT_EQ(store_->GetJob(id)->state, JobState::kSucceeded);
  EXPECT_EQ(*store_->CountRows("things"), 1);
}

TEST_P(StoreConformance, ExtendingClaimsNamesThoseTakenOver) {
  int64_t kept = Add("kept.json");
  int64_t lost = Add("lost.json");
  Job k = (*store_->ClaimJobs({kept}, "node-a", 2'000, 1'000))[0];
  Job l = (*store_->ClaimJobs({lost}, "node-a", 2'000, 1'000))[0];
  ASSERT_EQ(store_->ClaimJobs({lost}, "node-b", 9'000, 2'500)->size(), 1u);
  auto gone = store_->ExtendClaims({{kept, k.lease_epoch}, {lost, l.lease_epoch}}, 4'000);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(*gone, std::vector<int64_t>{lost});
  EXPECT_EQ(store_->GetJob(kept)->lease_until, 4'000);
  EXPECT_EQ(store_->GetJob(lost)->lease_until, 9'000);
}

TEST_P(StoreConformance, ARoleHasOneOwnerAtATimeAndATakeoverRaisesItsEpoch) {
  auto a = store_->TakeLease("spool:/srv/spool", "node-a", 2'000, 1'000);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ(**a, 1);
  EXPECT_FALSE(store_->TakeLease("spool:/srv/spool", "node-b", 3'000, 1'500)->has_value());
  auto renewed = store_->TakeLease("spool:/srv/spool", "node-a", 4'000, 1'900);
  EXPECT_EQ(**renewed, 1);  // renewing keeps the epoch
  EXPECT_FALSE(store_->TakeLease("spool:/srv/spool", "node-b", 5'000, 3'999)->has_value());
  auto b = store_->TakeLease("spool:/srv/spool", "node-b", 6'000, 4'001);
  ASSERT_TRUE(b->has_value());
  EXPECT_EQ(**b, 2);
  // node-a cannot give away what it no longer holds.
  ASSERT_TRUE(store_->ReleaseLease("spool:/srv/spool", "node-a", 1).ok());
  EXPECT_FALSE(store_->TakeLease("spool:/srv/spool", "node-c", 7'000, 4'500)->has_value());
  ASSERT_TRUE(store_->TakeLease("scheduler", "node-c", 7'000, 4'500)->has_value());
  auto leases = store_->ListLeases();
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 2u);
  EXPECT_EQ((*leases)[0].name, "scheduler");
  EXPECT_EQ((*leases)[1].owner, "node-b");
  EXPECT_EQ((*leases)[1].epoch, 2);
  // Released, it is free at once.
  ASSERT_TRUE(store_->ReleaseLease("spool:/srv/spool", "node-b", 2).ok());
  EXPECT_EQ(**store_->TakeLease("spool:/srv/spool", "node-c", 8'000, 4'600), 3);
  // Long-gone daemons' own leases are forgotten; nothing else is.
  ASSERT_TRUE(store_->TakeLease("daemon:old", "old", 1'000, 900)->has_value());
  ASSERT_TRUE(store_->TakeLease("daemon:new", "new", 9'000, 900)->has_value());
  EXPECT_EQ(*store_->PruneLeases("daemon:", 5'000), 1);
  auto left = store_->ListLeases();
  ASSERT_TRUE(left.ok());
  std::vector<std::string> names;
  for (const Lease& l : *left) names.push_back(l.name);
  EXPECT_EQ(names, (std::vector<std::string>{"daemon:new", "scheduler", "spool:/srv/spool"}));
}

TEST_P(StoreConformance, AdoptingMovesUnfinishedJobsFromTheirOwnerOnce) {
  Job a = NewJob("a.json");
  a.lease_owner = "dead";
  Job b = NewJob("b.json");
  b.lease_owner = "alive";
  Job c = NewJob("c.json");  // no owner
  Job d = NewJob("d.json");
  d.lease_owner = "dead";
  WriteBatch w;
  w.new_jobs = {a, b, c, d};
  ASSERT_TRUE(store_->Write(&w).ok());
  int64_t ia = w.new_jobs[0].id, ib = w.new_jobs[1].id, ic = w.new_jobs[2].id,
          id = w.new_jobs[3].id;
  EXPECT_EQ(store_->GetJob(ia)->lease_owner, "dead");
  WriteBatch done;
  JobUpdate finished = UpdateOf(*store_->GetJob(id));
  finished.state = JobState::kSucceeded;
  finished.finished_at = 5;
  done.updates = {finished};
  ASSERT_TRUE(store_->Write(&done).ok());
  auto moved = store_->AdoptJobs({ia, ib, ic, id}, "dead", "heir");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, std::vector<int64_t>{ia});  // not b (alive), c (none), d (finished)
  EXPECT_TRUE(store_->AdoptJobs({ia}, "dead", "other")->empty());  // once
  EXPECT_EQ(*store_->AdoptJobs({ic}, "", "heir"), std::vector<int64_t>{ic});
  EXPECT_EQ(store_->GetJob(ia)->lease_owner, "heir");
  EXPECT_EQ(store_->GetJob(ib)->lease_owner, "alive");
}

TEST_P(StoreConformance, ABatchWrittenUnderALeaseTakenOverCommitsNothing) {
  auto mine = store_->TakeLease("spool:/s", "node-a", 2'000, 1'000);
  ASSERT_TRUE(mine.ok() && mine->has_value());
  WriteBatch held;
  held.holder = "node-a";
  held.holds = {{"spool:/s", **mine}};
  held.new_jobs.push_back(NewJob("held.json"));
  ASSERT_TRUE(store_->Write(&held).ok());
  ASSERT_TRUE(store_->TakeLease("spool:/s", "node-b", 9'000, 2'001)->has_value());
  WriteBatch late;
  late.holder = "node-a";
  late.holds = {{"spool:/s", **mine}};
  late.new_jobs.push_back(NewJob("late.json"));
  Status st = store_->Write(&late);
  EXPECT_EQ(st.code(), Code::kCancelled) << st.ToString();
  EXPECT_NE(st.message().find("lease taken over: spool:/s"), std::string::npos) << st.message();
  JobFilter f;
  f.name = "late.json";
  EXPECT_TRUE(store_->ListJobs(f)->empty());
  EXPECT_EQ(late.new_jobs[0].id, 0);
}

// PostgreSQL: a database of its own per test, on the server `make test` starts
// (SLUICE_TEST_PG: a libpq "key=value" string without dbname). No server is a failure.
Result<std::unique_ptr<Store>> OpenPostgres(const std::string& dir) {
  const char* server = std::getenv("SLUICE_TEST_PG");
  if (server == nullptr || *server == '\0') {
    return Status::FailedPrecondition(
        "SLUICE_TEST_PG is not set: run the tests with `make test`, which starts PostgreSQL");
  }
  std::string db = "t" + dir.substr(dir.find_last_of('-') + 1);
  for (char& c : db) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string made = dir + "/pg-made";
  if (!std::filesystem::exists(made)) {
    auto admin = pg::Conn::Connect(std::string(server) + " dbname=postgres");
    if (!admin.ok()) return admin.status();
    auto created = admin->Exec("CREATE DATABASE " + db);
    if (!created.ok()) return created.status();
    std::ofstream(made) << db;
  }
  return OpenStore(std::string(server) + " dbname=" + db);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance,
                         ::testing::Values(Backend{"sqlite",
                                                   [](const std::string& dir) {
                                                     return OpenStore("sqlite:" + dir +
                                                                      "/store.db");
                                                   }},
                                           Backend{"postgresql", OpenPostgres}),
                         [](const auto& info) { return info.param.name; });

TEST(OpenStoreTest, UnknownSchemeIsInvalidArgument) {
  EXPECT_EQ(OpenStore("mysql://x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(OpenStore("sqlite:").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
