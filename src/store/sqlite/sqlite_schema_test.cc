// Schema versions on SQLite: steps in order, one transaction each, newer databases refused,
// databases from before versions were recorded taken as version 1.
#include "store/sqlite/sqlite_schema.h"

#include <gtest/gtest.h>

#include "core/test_util.h"
#include "store/sqlite/sqlite_store.h"

namespace sluice::sqlite {
namespace {

bool HasTable(Db& db, const std::string& name) {
  auto s = Stmt::Prepare(db.get(), "SELECT 1 FROM sqlite_master WHERE name='" + name + "'");
  return s.ok() && *s->Step();
}

TEST(SqliteSchemaTest, AppliesStepsInOrderAndStopsAtAFailingOneWithItRolledBack) {
  testing::TempDir dir;
  auto db = Db::Open(dir.Sub("s.db"));
  ASSERT_TRUE(db.ok());
  std::vector<Migration> list = {{1, "jobs", "CREATE TABLE jobs (id INTEGER)"},
                                 {2, "b", "CREATE TABLE b (x INTEGER)"},
                                 {3, "c then a mistake", "CREATE TABLE c (x); NOT SQL"}};
  SchemaReport report;
  Status st = Migrate(*db, list, "s.db", &report);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("migration 3 (c then a mistake)"), std::string::npos);
  EXPECT_EQ(*SchemaVersion(*db), 2);
  EXPECT_EQ(report.applied, (std::vector<std::string>{"1: jobs", "2: b"}));
  EXPECT_TRUE(HasTable(*db, "b"));
  EXPECT_FALSE(HasTable(*db, "c"));  // the failed step left nothing behind

  list[2].sql = "CREATE TABLE c (x)";
  SchemaReport again;
  ASSERT_TRUE(Migrate(*db, list, "s.db", &again).ok());
  EXPECT_EQ(again.applied, (std::vector<std::string>{"3: c then a mistake"}));
  EXPECT_EQ(again.version, 3);
  SchemaReport nothing;
  ASSERT_TRUE(Migrate(*db, list, "s.db", &nothing).ok());
  EXPECT_TRUE(nothing.applied.empty());
}

TEST(SqliteSchemaTest, ANewerDatabaseIsRefusedAndLeftAlone) {
  testing::TempDir dir;
  auto db = Db::Open(dir.Sub("s.db"));
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(db->Exec("CREATE TABLE jobs (id INTEGER); PRAGMA user_version = 9").ok());
  SchemaReport report;
  Status st = Migrate(*db, StoreMigrations(), "s.db", &report);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("schema version 9, newer than this sluice (5)"), std::string::npos);
  EXPECT_EQ(*SchemaVersion(*db), 9);
  auto store = SqliteStore::Open(dir.Sub("s.db"));
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
}

TEST(SqliteSchemaTest, AnUnversionedDatabaseIsVersionOneWithItsLateColumnAddedThenMigrated) {
  testing::TempDir dir;
  {
    auto db = Db::Open(dir.Sub("s.db"));
    ASSERT_TRUE(db.ok());
    // Version 1 as the earliest releases made it: tasks without scheduler_given.
    std::string v1 = StoreMigrations()[0].sql;
    size_t col = v1.find(",\n  scheduler_given INTEGER NOT NULL DEFAULT 1");
    ASSERT_NE(col, std::string::npos);
    v1.erase(col, std::string(",\n  scheduler_given INTEGER NOT NULL DEFAULT 1").size());
    ASSERT_TRUE(db->Exec(v1).ok());
    ASSERT_TRUE(db->Exec("INSERT INTO tasks (task_id, backend, category, backend_args, archive,"
                         " fetch_from_archive, delay_s, max_retries, max_age, queue, status, age,"
                         " num_failures, created_on, next_run_at, next_from_date, current_job)"
                         " VALUES ('t','git','commit','{}','',0,1,1,0,'','NEW',0,0,1,1,'','')")
                    .ok());
  }
  auto store = SqliteStore::Open(dir.Sub("s.db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // Taken as version 1, then brought to the latest: version 2's lease columns added.
  EXPECT_EQ((*store)->schema().version, 5);
  ASSERT_EQ((*store)->schema().applied.size(), 4u);
  EXPECT_EQ((*store)->schema().applied[0].rfind("2: ", 0), 0u);
  auto task = (*store)->GetTask("t");
  ASSERT_TRUE(task.ok());
  EXPECT_TRUE(task->schedule_given);
}

// The overview counts jobs ended per minute for 15 minutes on every dashboard refresh: on
// the state index each count read every ended job of the store.
TEST(SqliteSchemaTest, TheOverviewsPerMinuteCountWalksTheFinishedIndex) {
  testing::TempDir dir;
  auto store = SqliteStore::Open(dir.Sub("s.db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto db = Db::Open(dir.Sub("s.db"));
  ASSERT_TRUE(db.ok());
  auto plan = Stmt::Prepare(db->get(), std::string("EXPLAIN QUERY PLAN ") + kEndedInRangeSql);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::string details;
  while (*plan->Step()) details += plan->Text(3) + "\n";
  EXPECT_NE(details.find("jobs_finished (finished_at>? AND finished_at<?)"), std::string::npos)
      << details;
  EXPECT_EQ(details.find("jobs_state "), std::string::npos) << details;
}

// The ended jobs' counts as their table says, and as counting the jobs says, as one text.
std::string EndedCounts(Db& db, bool from_jobs) {
  std::string sql =
      from_jobs ? "SELECT queue, spool, state, COALESCE(error_code, ''), retried_at != 0, "
                  "COUNT(*) FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') "
                  "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
                : "SELECT queue, spool, state, error_code, retried, n FROM ended_job_counts "
                  "WHERE n != 0 ORDER BY 1, 2, 3, 4, 5";
  auto s = Stmt::Prepare(db.get(), sql);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  std::string out;
  while (*s->Step()) {
    for (int i = 0; i < 6; ++i) out += s->Text(i) + (i < 5 ? "|" : "\n");
  }
  return out;
}

// `sql`'s rows as "a|b|n" lines.
std::string Rows(Db& db, const std::string& sql) {
  auto s = Stmt::Prepare(db.get(), sql);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  std::string out;
  while (*s->Step()) {
    for (int i = 0; i < s->Columns(); ++i) out += s->Text(i) + (i + 1 < s->Columns() ? "|" : "\n");
  }
  return out;
}

template <typename Map>
std::string Lines(const Map& counts) {
  std::string out;
  for (const auto& [key, n] : counts) {
    if constexpr (std::is_same_v<std::decay_t<decltype(key)>, std::string>) {
      out += key + "|" + std::to_string(n) + "\n";
    } else {
      out += key.first + "|" + key.second + "|" + std::to_string(n) + "\n";
    }
  }
  return out;
}

// /metrics, /api/v1/queues and the overview counted every job ever run (0.29-0.36 s on five
// million). Version 5 counts the ended jobs of an older database once, then every change
// into or out of an ended state, or of an ended job's queue, spool, error code or retried
// mark, by whatever statement, moves its count; the store's counts then agree with counting
// the jobs themselves.
TEST(SqliteSchemaTest, EndedJobCountsStartFromTheJobsThereAndFollowEveryChange) {
  testing::TempDir dir;
  auto db = Db::Open(dir.Sub("s.db"));
  ASSERT_TRUE(db.ok());
  std::vector<Migration> four(StoreMigrations().begin(), StoreMigrations().begin() + 4);
  SchemaReport report;
  ASSERT_TRUE(Migrate(*db, four, "s.db", &report).ok());
  auto insert = [&](const std::string& queue, const std::string& spool, const std::string& state,
                    const std::string& code, int retried_at) {
    ASSERT_TRUE(db->Exec("INSERT INTO jobs (queue, kind, spool, name, state, max_attempts,"
                         " created_at, error_code, retried_at) VALUES ('" +
                         queue + "', 'kcidb', '" + spool + "', 'x.json', '" + state + "', 5, 1, " +
                         (code.empty() ? "NULL" : "'" + code + "'") + ", " +
                         std::to_string(retried_at) + ")")
                    .ok());
  };
  for (int i = 0; i < 3; ++i) insert("default", "/s", "succeeded", "", 0);
  insert("default", "/s", "failed", "invalid_json", 0);
  insert("default", "/s", "failed", "invalid_json", 7);
  insert("other", "", "queued", "", 0);
  insert("other", "", "failed", "", 0);
  insert("other", "", "deferred", "", 0);
  SchemaReport five;
  ASSERT_TRUE(Migrate(*db, StoreMigrations(), "s.db", &five).ok());
  EXPECT_EQ(five.applied, (std::vector<std::string>{"5: ended jobs counted by triggers"}));
  EXPECT_FALSE(EndedCounts(*db, true).empty());
  EXPECT_EQ(EndedCounts(*db, false), EndedCounts(*db, true));

  const char* changes[] = {
      "UPDATE jobs SET state = 'running' WHERE queue = 'other' AND state = 'queued'",
      "UPDATE jobs SET state = 'failed', error_code = 'timeout' WHERE state = 'running'",
      "UPDATE jobs SET retried_at = 9 WHERE error_code = 'timeout'",
      "UPDATE jobs SET error_code = NULL WHERE error_code = 'timeout'",
      "UPDATE jobs SET error_code = 'x' WHERE id = 1",  // a code on a succeeded job
      "UPDATE jobs SET priority = 5",                   // no counted column changes
      "UPDATE jobs SET state = state, queue = queue",   // named, not changed
      "UPDATE jobs SET queue = 'moved', spool = '/t' WHERE id = 2",
      "UPDATE jobs SET state = 'queued', error_code = NULL WHERE id = 4",  // a retry
      "UPDATE jobs SET state = 'cancelled' WHERE id = 4",
      "DELETE FROM jobs WHERE id = 3",
      "INSERT INTO jobs (queue, kind, spool, name, state, max_attempts, created_at)"
      " SELECT queue, kind, spool, name, state, max_attempts, created_at FROM jobs",
  };
  for (const char* sql : changes) {
    ASSERT_TRUE(db->Exec(sql).ok()) << sql;
    EXPECT_EQ(EndedCounts(*db, false), EndedCounts(*db, true)) << sql;
  }
  auto store = SqliteStore::Open(dir.Sub("s.db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto by_state = (*store)->CountJobsByState();
  auto by_queue = (*store)->CountJobsByQueue();
  auto by_spool = (*store)->CountJobsBySpool();
  auto sum = (*store)->SummarizeJobs(0, 1);
  ASSERT_TRUE(by_state.ok() && by_queue.ok() && by_spool.ok() && sum.ok());
  EXPECT_EQ(Lines(*by_state), Rows(*db, "SELECT state, COUNT(*) FROM jobs GROUP BY 1 ORDER BY 1"));
  EXPECT_EQ(Lines(*by_queue),
            Rows(*db, "SELECT queue, state, COUNT(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2"));
  EXPECT_EQ(Lines(*by_spool),
            Rows(*db, "SELECT spool, state, COUNT(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2"));
  EXPECT_NE(Lines(*by_state).find("deferred|2"), std::string::npos);
  std::string failures;
  for (const auto& [code, n] : sum->failures) failures += code + "|" + std::to_string(n) + "\n";
  EXPECT_EQ(failures, Rows(*db,
                           "SELECT COALESCE(error_code, ''), COUNT(*) FROM jobs WHERE"
                           " state = 'failed' AND retried_at = 0 GROUP BY 1"
                           " ORDER BY 2 DESC, 1"));
}

// The counts read ended jobs from their table and the others from the state index: never a
// walk of every job.
TEST(SqliteSchemaTest, JobCountsReadTheEndedCountsAndTheStateIndex) {
  testing::TempDir dir;
  auto store = SqliteStore::Open(dir.Sub("s.db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto db = Db::Open(dir.Sub("s.db"));
  ASSERT_TRUE(db.ok());
  for (const char* columns : {"", "queue", "spool"}) {
    std::string plan = Rows(*db, "EXPLAIN QUERY PLAN " + JobCountsSql(columns));
    EXPECT_NE(plan.find("ended_job_counts"), std::string::npos) << plan;
    EXPECT_NE(plan.find("INDEX jobs_state (state=?)"), std::string::npos) << plan;
    EXPECT_EQ(plan.find("SCAN jobs"), std::string::npos) << plan;
  }
}

}  // namespace
}  // namespace sluice::sqlite
