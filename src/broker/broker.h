// Broker: carries ready job ids to workers. In embedded mode an in-process priority queue,
// rebuilt from the store on start; Redis Streams will implement the same interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace sluice {

struct Ticket {
  int64_t job_id = 0;
  int priority = 0;    // higher runs first
  int64_t order = 0;   // then lower first (the file's mtime: oldest first)
  int64_t run_at = 0;  // wall-clock micros; not handed out before
};

class Broker {
 public:
  virtual ~Broker() = default;
  // Adds a ticket. Thread-safe.
  virtual void Push(const Ticket& t) = 0;
  // The best ticket that is due, waiting up to `wait` for one. nullopt on timeout or Close().
  virtual std::optional<Ticket> Pop(std::chrono::milliseconds wait) = 0;
  // Wakes every waiting Pop(); later Pops return nullopt at once.
  virtual void Close() = 0;
  // Due and not-yet-due tickets held.
  virtual size_t ReadyCount() const = 0;
  virtual size_t DelayedCount() const = 0;
};

}  // namespace sluice
