// The checkpointer: the log copied back in the background, bounded, nothing lost.
#include "store/sqlite/checkpointer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "core/test_util.h"

namespace sluice::sqlite {
namespace {

int64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST(CheckpointerTest, CopiesTheLogInTheBackgroundAndKeepsItBounded) {
  testing::TempDir dir;
  std::string path = dir.Sub("c.db");
  auto w = Db::Open(path);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->Exec("PRAGMA page_size=4096; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                      " CREATE TABLE t (x BLOB)")
                  .ok());
  Checkpointer::Limits limits;
  limits.background_pages = 20;
  limits.inline_pages = 100;
  limits.residue_pages = 20;
  auto c = Checkpointer::Start(path, w->get(), limits);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto ins = Stmt::Prepare(w->get(), "INSERT INTO t VALUES (zeroblob(3000))");
  ASSERT_TRUE(ins.ok());
  int64_t largest_log = 0;
  for (int i = 0; i < 600; ++i) {
    ASSERT_TRUE(w->Exec("BEGIN IMMEDIATE").ok());
    for (int j = 0; j < 3; ++j) ASSERT_TRUE(ins->Run().ok());
    ASSERT_TRUE(w->Exec("COMMIT").ok());
    largest_log = std::max(largest_log, FileSize(path + "-wal"));
    // A writer that pauses now and then lets the background thread finish.
    if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Some copies ran on the background thread; the log stayed bounded: the writer's own limit,
  // plus what commits while a background copy runs (the writer's copy is refused then).
  EXPECT_GT((*c)->background_runs(), 0);
  EXPECT_LE(largest_log, 4 * limits.inline_pages * (4096 + 24) + 32);  // not 2,400 pages
  c->reset();
  *ins = Stmt();
  // Every row is there, read through a connection of its own after the writer closed.
  ASSERT_TRUE(w->Close().ok());
  auto r = Db::Open(path);
  ASSERT_TRUE(r.ok());
  auto n = Stmt::Prepare(r->get(), "SELECT count(*) FROM t");
  ASSERT_TRUE(n.ok());
  ASSERT_TRUE(*n->Step());
  EXPECT_EQ(n->Int(0), 1800);
}

}  // namespace
}  // namespace sluice::sqlite
