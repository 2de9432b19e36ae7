// PgStore beyond the conformance suite: event ids visible in id order with two writers, and
// a batch written again after an unheard commit not applied twice. On the server `make test`
// starts (SLUICE_TEST_PG); without one the tests fail.
#include "store/postgres/pg_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "store/postgres/pg_conn.h"
#include "store/postgres/pg_schema.h"

namespace sluice {
namespace {

std::string NewDatabase(const std::string& name) {
  const char* server = std::getenv("SLUICE_TEST_PG");
  if (server == nullptr || *server == '\0') {
    ADD_FAILURE() << "SLUICE_TEST_PG is not set: run the tests with `make test`";
    return "";
  }
  auto admin = pg::Conn::Connect(std::string(server) + " dbname=postgres");
  EXPECT_TRUE(admin.ok()) << admin.status().ToString();
  std::string db = name + std::to_string(::getpid()) + "_" +
                   std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  EXPECT_TRUE(admin->Exec("CREATE DATABASE " + db).ok());
  return std::string(server) + " dbname=" + db;
}

Job NewJob(int64_t id, const std::string& name) {
  Job j;
  j.id = id;
  j.kind = "exec";
  j.queue = "default";
  j.spool = "/spool";
  j.name = name;
  j.created_at = 1;
  j.max_attempts = 1;
  return j;
}

TEST(PgStoreTest, TwoWritersEventsBecomeVisibleInIdOrder) {
  std::string db = NewDatabase("order");
  ASSERT_FALSE(db.empty());
  auto a = PgStore::Open(db, {});
  auto b = PgStore::Open(db, {});
  auto reader = PgStore::Open(db, {});
  ASSERT_TRUE(a.ok() && b.ok() && reader.ok());
  std::atomic<bool> done{false};
  std::atomic<int> written{0};
  auto writer = [&](PgStore* s, const std::string& tag) {
    for (int i = 0; i < 150; ++i) {
      auto id = s->ReserveJobIds(1);
      ASSERT_TRUE(id.ok());
      WriteBatch batch;
      batch.new_jobs = {NewJob(*id, tag + std::to_string(i))};
      JobUpdate u;
      u.job_id = *id;
      u.state = JobState::kRunning;
      u.events = {LogEvent(batch.new_jobs[0], 2, "one"), LogEvent(batch.new_jobs[0], 2, "two")};
      WriteBatch second;
      second.updates = {u};
      ASSERT_TRUE(s->Write(&batch).ok());
      ASSERT_TRUE(s->Write(&second).ok());
      written += 3;
    }
  };
  std::vector<int64_t> seen;
  std::thread tail([&] {
    int64_t last = 0;
    while (true) {
      bool finished = done.load();
      EventFilter f;
      f.after_id = last;
      auto events = (*reader)->ListEvents(f);
      ASSERT_TRUE(events.ok());
      for (const Event& e : *events) {
        ASSERT_GT(e.id, last);
        last = e.id;
        seen.push_back(e.id);
      }
      if (finished && events->empty()) break;
    }
  });
  std::thread wa(writer, a->get(), "a");
  std::thread wb(writer, b->get(), "b");
  wa.join();
  wb.join();
  done = true;
  tail.join();
  // Every event was seen by the reader that only ever asked for ids above the last it saw:
  // none became visible below an id already seen.
  EXPECT_EQ(static_cast<int>(seen.size()), written.load());
  auto all = (*reader)->ListEvents(EventFilter{0, 0, {}, {}, {}, 100000});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), seen.size());
}

TEST(PgStoreTest, ABatchWrittenAgainAfterItCommittedIsNotAppliedTwice) {
  std::string db = NewDatabase("token");
  ASSERT_FALSE(db.empty());
  auto s = PgStore::Open(db, {});
  ASSERT_TRUE(s.ok());
  WriteBatch batch;
  batch.new_jobs = {NewJob(0, "once.json")};
  ASSERT_TRUE((*s)->Write(&batch).ok());
  ASSERT_FALSE(batch.token.empty());
  int64_t first_event = batch.appended[0].id;
  // As the writer does when the commit's answer was lost: the same batch, the same token.
  ASSERT_TRUE((*s)->Write(&batch).ok());
  EXPECT_EQ(batch.appended.size(), 1u);
  EXPECT_EQ(batch.appended[0].id, first_event);
  JobFilter f;
  f.name = "once.json";
  EXPECT_EQ((*s)->ListJobs(f)->size(), 1u);
  EXPECT_EQ((*s)->ListEvents(EventFilter{})->size(), 1u);
}

// The ended jobs' counts as ended_job_counts and its pending changes say, and as counting
// the jobs says.
std::string Counts(pg::Conn& c, bool from_jobs) {
  std::string key = "queue, spool, state, COALESCE(error_code, ''), retried_at <> 0";
  auto r = c.Exec(from_jobs ? "SELECT " + key +
                                  ", COUNT(*) FROM sluice.jobs WHERE state IN ('succeeded',"
                                  " 'failed', 'cancelled') GROUP BY 1, 2, 3, 4, 5 "
                                  "ORDER BY 1, 2, 3, 4, 5"
                            : "SELECT queue, spool, state, error_code, retried, SUM(n) FROM "
                              "(SELECT * FROM sluice.ended_job_counts UNION ALL SELECT * FROM "
                              "sluice.ended_job_count_changes) c GROUP BY 1, 2, 3, 4, 5 "
                              "HAVING SUM(n) <> 0 ORDER BY 1, 2, 3, 4, 5");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::string out;
  for (int i = 0; r.ok() && i < r->size(); ++i) {
    for (int k = 0; k < 6; ++k) out += r->Text(i, k) + (k < 5 ? "|" : "\n");
  }
  return out;
}

// /metrics, /api/v1/queues and the overview counted every job ever run (0.75 s by queue on
// five million). Version 5 counts an older database's ended jobs once; then every statement
// that changes jobs records the net change of the ended ones, a fold moves the changes into
// ended_job_counts, and the two together always say what counting the jobs says; the store's
// counts (those and the jobs not ended) agree with counting the jobs.
TEST(PgStoreTest, EndedJobCountsStartFromTheJobsThereAndFollowEveryStatement) {
  std::string db = NewDatabase("counts");
  ASSERT_FALSE(db.empty());
  auto c = pg::Conn::Connect(db);
  ASSERT_TRUE(c.ok());
  const auto& all = pg::StoreMigrations();
  std::vector<Migration> four(all.begin(), all.begin() + 4);
  SchemaReport report;
  ASSERT_TRUE(pg::Migrate(*c, "sluice", four, &report).ok());
  ASSERT_TRUE(c->Script("INSERT INTO sluice.jobs (id, queue, kind, spool, name, state,"
                        " max_attempts, created_at, error_code, retried_at) VALUES"
                        " (1, 'default', 'kcidb', '/s', 'a', 'succeeded', 5, 1, NULL, 0),"
                        " (2, 'default', 'kcidb', '/s', 'b', 'failed', 5, 1, 'invalid_json', 0),"
                        " (3, 'default', 'kcidb', '/s', 'c', 'failed', 5, 1, 'invalid_json', 7),"
                        " (4, 'other', 'kcidb', '', 'd', 'queued', 5, 1, NULL, 0)")
                  .ok());
  SchemaReport five;
  ASSERT_TRUE(pg::Migrate(*c, "sluice", all, &five).ok());
  EXPECT_EQ(five.applied.size(), 1u);
  EXPECT_FALSE(Counts(*c, true).empty());
  EXPECT_EQ(Counts(*c, false), Counts(*c, true));
  const char* changes[] = {
      "UPDATE sluice.jobs SET state = 'running' WHERE state = 'queued'",
      "UPDATE sluice.jobs SET state = 'failed', error_code = 'timeout' WHERE state = 'running'",
      "UPDATE sluice.jobs SET retried_at = 9 WHERE error_code = 'timeout'",
      "UPDATE sluice.jobs SET priority = 5",  // no counted column changes
      "SELECT sluice.fold_ended_job_counts()",
      "UPDATE sluice.jobs SET queue = 'moved', spool = '/t' WHERE id = 1",
      "UPDATE sluice.jobs SET state = 'queued', error_code = NULL WHERE id = 2",  // a retry
      "UPDATE sluice.jobs SET state = 'cancelled' WHERE id = 2",
      "DELETE FROM sluice.jobs WHERE id = 3",
      "INSERT INTO sluice.jobs (id, queue, kind, spool, name, state, max_attempts, created_at)"
      " SELECT id + 100, queue, kind, spool, name, state, max_attempts, created_at"
      " FROM sluice.jobs",
      "SELECT sluice.fold_ended_job_counts()",
  };
  for (const char* sql : changes) {
    ASSERT_TRUE(c->Exec(sql).ok()) << sql;
    EXPECT_EQ(Counts(*c, false), Counts(*c, true)) << sql;
  }
  auto changed = c->Exec("SELECT COUNT(*) FROM sluice.ended_job_count_changes");
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->Int(0, 0), 0);  // all folded

  // The store's own reads, and its writes: a job written through it is counted.
  ASSERT_TRUE(c->Exec("UPDATE sluice.counters SET value = 1000 WHERE name = 'jobs'").ok());
  auto s = PgStore::Open(db, {});
  ASSERT_TRUE(s.ok());
  WriteBatch batch;
  batch.new_jobs = {NewJob(0, "new.json")};
  Status written = (*s)->Write(&batch);
  ASSERT_TRUE(written.ok()) << written.ToString();
  auto by_state = (*s)->CountJobsByState();
  auto by_spool = (*s)->CountJobsBySpool();
  ASSERT_TRUE(by_state.ok() && by_spool.ok());
  auto direct = c->Exec("SELECT state, COUNT(*) FROM sluice.jobs GROUP BY 1");
  ASSERT_TRUE(direct.ok());
  std::map<std::string, int64_t> expected;
  for (int i = 0; i < direct->size(); ++i) expected[direct->Text(i, 0)] = direct->Int(i, 1);
  EXPECT_EQ(*by_state, expected);
  EXPECT_EQ(expected["queued"], 1);  // the job written through the store
  auto spools = c->Exec("SELECT spool, state, COUNT(*) FROM sluice.jobs GROUP BY 1, 2");
  ASSERT_TRUE(spools.ok());
  std::map<std::pair<std::string, std::string>, int64_t> by_spool_expected;
  for (int i = 0; i < spools->size(); ++i) {
    by_spool_expected[{spools->Text(i, 0), spools->Text(i, 1)}] = spools->Int(i, 2);
  }
  EXPECT_EQ(*by_spool, by_spool_expected);
  EXPECT_EQ(Counts(*c, false), Counts(*c, true));
}

// Writers in several processes change jobs of their own, of the same queues and states, at
// once, each transaction touching the counts' combinations in another order, while folds
// run: nobody waits on a shared row (counters kept in place would be such rows, locked in
// opposite orders), so no write fails as a deadlock, and the counts end right.
TEST(PgStoreTest, ConcurrentWritersAndFoldsNeverDeadlockAndCountRight) {
  std::string db = NewDatabase("countrace");
  ASSERT_FALSE(db.empty());
  auto s = PgStore::Open(db, {});
  ASSERT_TRUE(s.ok());
  auto c = pg::Conn::Connect(db);
  ASSERT_TRUE(c.ok());
  // Two queues; each writer has jobs of its own in both.
  ASSERT_TRUE(c->Exec("INSERT INTO sluice.jobs (id, queue, kind, spool, name, state,"
                      " max_attempts, created_at) SELECT i, 'q' || (i % 2), 'exec', '', 'n',"
                      " 'queued', 1, 1 FROM generate_series(1, 400) i")
                  .ok());
  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};
  auto writer = [&](int seed) {
    auto w = pg::Conn::Connect(db);
    ASSERT_TRUE(w.ok());
    for (int round = 0; round < 20; ++round) {
      // One transaction flipping its jobs of both queues between succeeded and failed, the
      // queues in an order of its own (the other writer's is the reverse), held open a
      // moment between them.
      std::string to = round % 2 == 0 ? "failed" : "succeeded";
      auto flip = [&](int queue) {
        return "UPDATE sluice.jobs SET state = '" + to + "' WHERE queue = 'q" +
               std::to_string(queue) + "' AND (id / 2) % 2 = " + std::to_string(seed);
      };
      Status st = w->Script("BEGIN; " + flip(seed) + "; SELECT pg_sleep(0.02); " + flip(1 - seed) +
                            "; COMMIT");
      if (!st.ok()) {
        ++failures;
        ADD_FAILURE() << st.ToString();
        (void)w->Script("ROLLBACK");
      }
    }
  };
  std::thread folder([&] {
    auto f = pg::Conn::Connect(db);
    ASSERT_TRUE(f.ok());
    while (writing) {
      if (!f->Exec("SELECT sluice.fold_ended_job_counts()").ok()) ++failures;
    }
  });
  std::vector<std::thread> writers;
  for (int i = 0; i < 2; ++i) writers.emplace_back(writer, i);
  for (auto& t : writers) t.join();
  writing = false;
  folder.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Counts(*c, false), Counts(*c, true));
  auto by_queue = (*s)->CountJobsByQueue();
  ASSERT_TRUE(by_queue.ok());
  int64_t total = 0;
  for (const auto& [key, n] : *by_queue) total += n;
  EXPECT_EQ(total, 400);
}

}  // namespace
}  // namespace sluice
