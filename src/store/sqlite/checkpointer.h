// Checkpointer: copies the write-ahead log back into the database on a thread of its own.
//
// SQLite checkpoints inside the COMMIT that crosses its threshold, on the committing thread:
// for a store written by one writer thread that is the thread every commit waits for. Here
// the writer's commits only nudge this thread, which checkpoints (PASSIVE: it never blocks
// the writer) on its own connection. Should it fall far behind (a sustained burst can keep
// it from ever backfilling the whole log), the writer checkpoints itself, as SQLite would,
// so the log stays bounded (by the writer's limit plus what commits while a background copy
// is under way: only one checkpoint runs at a time, and the writer's is refused meanwhile).
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "store/sqlite/sqlite_db.h"

namespace sluice::sqlite {

class Checkpointer {
 public:
  struct Limits {
    int background_pages = 1000;  // log pages that start a checkpoint here (SQLite's default)
    int inline_pages = 10000;     // log pages past which the writer checkpoints itself
    int residue_pages = 1000;     // at most this many left by this thread: the writer copies
                                  // them, so the log starts again from its beginning
  };

  // Opens its own connection to `path` and installs itself as `writer`'s WAL hook.
  static Result<std::unique_ptr<Checkpointer>> Start(const std::string& path, sqlite3* writer,
                                                     Limits limits);
  static Result<std::unique_ptr<Checkpointer>> Start(const std::string& path, sqlite3* writer) {
    return Start(path, writer, Limits());
  }
  ~Checkpointer();  // stops the thread; a checkpoint under way ends first

  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  int64_t background_runs() const;

 private:
  Checkpointer() = default;
  static int OnCommit(void* self, sqlite3* db, const char* schema, int pages);
  void Loop();

  Limits limits_;
  Db db_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stop_ = false;
  bool running_ = false;
  int backfilled_ = 0;  // log pages the last background checkpoint copied
  int64_t runs_ = 0;
};

}  // namespace sluice::sqlite
