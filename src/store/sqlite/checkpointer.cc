// Checkpointer: the write-ahead log copied back on a thread of its own.
#include "store/sqlite/checkpointer.h"

#include <pthread.h>

#include "core/spdlog.h"

namespace sluice::sqlite {

Result<std::unique_ptr<Checkpointer>> Checkpointer::Start(const std::string& path, sqlite3* writer,
                                                          Limits limits) {
  std::unique_ptr<Checkpointer> c(new Checkpointer());
  c->limits_ = limits;
  auto db = Db::Open(path);
  if (!db.ok()) return db.status();
  c->db_ = std::move(*db);
  // A connection reads the file only when first used: until then it does not know the
  // database is in WAL mode, and a checkpoint on it does nothing.
  SLUICE_RETURN_IF_ERROR(c->db_.Exec("PRAGMA journal_mode=WAL"));
  // Replaces SQLite's automatic checkpoint on the writer's connection (also a WAL hook).
  sqlite3_wal_hook(writer, &Checkpointer::OnCommit, c.get());
  c->thread_ = std::thread([p = c.get()] { p->Loop(); });
  return c;
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

int64_t Checkpointer::background_runs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return runs_;
}

// Called by SQLite on the writer's thread after each commit, with the log's length in pages.
int Checkpointer::OnCommit(void* self, sqlite3* db, const char* schema, int pages) {
  auto* c = static_cast<Checkpointer*>(self);
  if (pages < c->limits_.background_pages) return SQLITE_OK;
  bool inline_now;
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    // What the background left (the frames committed since its last run) is copied here:
    // a log backfilled to its end starts again from its beginning at the next transaction,
    // so it stays short and its pages are rewritten in the cache, not allocated afresh.
    inline_now = pages >= c->limits_.inline_pages ||
                 (!c->running_ && pages - c->backfilled_ <= c->limits_.residue_pages);
    if (!inline_now) c->wanted_ = true;
  }
  if (inline_now) {
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    std::lock_guard<std::mutex> lock(c->mu_);
    c->backfilled_ = 0;
  } else {
    c->cv_.notify_one();
  }
  return SQLITE_OK;
}

void Checkpointer::Loop() {
  pthread_setname_np(pthread_self(), "sluice-ckpt");
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return wanted_ || stop_; });
    if (stop_) return;
    wanted_ = false;
    running_ = true;
    lock.unlock();
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    // BUSY: another checkpoint (the writer's own, or at close) is running; the next commit
    // nudges again. Anything else is logged: the writer's inline checkpoint still bounds the
    // log.
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY) {
      spdlog::warn("background checkpoint: {}", sqlite3_errstr(rc));
    }
    lock.lock();
    running_ = false;
    backfilled_ = rc == SQLITE_OK ? done : 0;
    runs_++;
  }
}

}  // namespace sluice::sqlite
