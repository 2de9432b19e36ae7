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
  EXPECT_NE(st.message().find("schema version 9, newer than this sluice (4)"), std::string::npos);
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
  EXPECT_EQ((*store)->schema().version, 4);
  ASSERT_EQ((*store)->schema().applied.size(), 3u);
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

}  // namespace
}  // namespace sluice::sqlite
