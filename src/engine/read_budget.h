// ReadBudget: how many bytes of spool files the daemon's workers read and parse at once.
//
// A handler holds a file several times over while it runs (the text, the parsed document,
// the rows: about 5.5 times a KCIDB file's size), so five workers on five large files could
// take gigabytes. A worker takes its file's size from the budget before the handler runs and
// gives it back when the handler returns; a file larger than the whole budget takes all of it
// and runs alone. Waiters are served in the order they came: small files never starve a
// large one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

namespace sluice {

class ReadBudget {
 public:
  // What was taken, given back when destroyed (or by Release()).
  class Grant {
   public:
    Grant() = default;
    Grant(ReadBudget* budget, uint64_t bytes) : budget_(budget), bytes_(bytes) {}
    Grant(Grant&& o) noexcept : budget_(o.budget_), bytes_(o.bytes_) { o.budget_ = nullptr; }
    Grant& operator=(Grant&& o) noexcept;
    Grant(const Grant&) = delete;
    Grant& operator=(const Grant&) = delete;
    ~Grant() { Release(); }
    void Release();

   private:
    ReadBudget* budget_ = nullptr;
    uint64_t bytes_ = 0;
  };

  explicit ReadBudget(uint64_t bytes) : total_(bytes), free_(bytes) {}

  // Takes `bytes` (at most the whole budget), waiting for its turn and for that much to be
  // free. Gives up when `stop` becomes true (looked at every 100 ms): `taken` false then.
  Grant Take(uint64_t bytes, const std::atomic<bool>& stop, bool* taken);
  // Bytes taken now.
  uint64_t Held() const;
  // Takers waiting for their turn now.
  size_t Waiters() const;
  uint64_t total() const { return total_; }

 private:
  void Give(uint64_t bytes);

  const uint64_t total_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t free_;
  uint64_t next_ticket_ = 0;
  std::deque<uint64_t> waiting_;  // tickets in the order they came
};

}  // namespace sluice
