// PgStore beyond the conformance suite: event ids visible in id order with two writers, and
// a batch written again after an unheard commit not applied twice. On the server `make test`
// starts (SLUICE_TEST_PG); without one the tests fail.
#include "store/postgres/pg_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "store/postgres/pg_conn.h"

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

}  // namespace
}  // namespace sluice
