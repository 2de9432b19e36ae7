// Broker: carries ready job ids to workers. Embedded: an in-process priority queue, rebuilt
// from the store on start (broker/local). Distributed: Redis Streams with consumer groups
// (broker/redis). The store stays the truth: a broker that loses a ticket costs latency
// (the engine publishes what is queued again), never a job.
//
// Leases (BrokerOptions::lease_ms > 0): a ticket handed out by Pop stays the popper's until
// Ack (its job's final state is committed) or until it goes lease_ms without an Extend; then
// it is handed out again (to any consumer), its delivery count one higher. A ticket whose
// lease lapses after max_deliveries hand-outs is a dead letter: the next Pop returns it once
// with `dead` set (its job must fail as dead_letter) and the broker keeps a record of it.
// Without leases (the embedded engine, which keeps its own worker heartbeats) Ack and Extend
// do nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

struct Ticket {
  Ticket() = default;
  Ticket(int64_t id, int prio, int64_t ord, int64_t due, std::string q = {})
      : job_id(id), priority(prio), order(ord), run_at(due), queue(std::move(q)) {}

  int64_t job_id = 0;
  int priority = 0;    // higher runs first
  int64_t order = 0;   // then lower first (the file's mtime: oldest first)
  int64_t run_at = 0;  // wall-clock micros; not handed out before
  std::string queue;   // "" is the default queue

  // Set by Pop.
  std::string delivery;  // the broker's handle of this hand-out, for Ack and Extend
  int deliveries = 0;    // hand-outs of this ticket so far, this one included
  bool dead = false;     // a dead letter: fail the job, do not run it
};

struct BrokerOptions {
  int lease_ms = 0;                 // 0: no leases (see above)
  int max_deliveries = 5;           // hand-outs before a ticket is a dead letter
  std::vector<std::string> queues;  // those Pop serves; empty: all (that `serves` accepts)
  // With `queues` empty: which of the queues tickets were pushed to Pop serves (null: all).
  std::function<bool(const std::string& queue)> serves;
};

// A cluster's broker queue for the jobs of `queue` and `kind`: "QUEUE/KIND", so that each
// process reads only the kinds it can run (kinds hold no '/'). The job's queue and kind from
// such a name (false when it is not one).
inline std::string BrokerQueue(const std::string& queue, const std::string& kind) {
  return queue + "/" + kind;
}
inline bool SplitBrokerQueue(const std::string& name, std::string* queue, std::string* kind) {
  size_t slash = name.rfind('/');
  if (slash == std::string::npos) return false;
  *queue = name.substr(0, slash);
  *kind = name.substr(slash + 1);
  return true;
}

class Broker {
 public:
  virtual ~Broker() = default;
  // Adds a ticket. Thread-safe. Never fails: a ticket the broker could not take is found
  // again in the store.
  virtual void Push(const Ticket& t) = 0;
  // The best ticket that is due, waiting up to `wait` for one. nullopt on timeout or Close().
  virtual std::optional<Ticket> Pop(std::chrono::milliseconds wait) = 0;
  // The popped ticket's job is done (its final state committed): never hand it out again.
  virtual void Ack(const Ticket& t) = 0;
  // Ack of each of `tickets` (a distributed broker sends them in one round trip).
  virtual void AckAll(const std::vector<Ticket>& tickets) {
    for (const Ticket& t : tickets) Ack(t);
  }
  // The popped ticket's job is still running: its lease starts again.
  virtual void Extend(const Ticket& t) = 0;
  // Wakes every waiting Pop(); later Pops return nullopt at once.
  virtual void Close() = 0;
  // Due and not-yet-due tickets held, those handed out and not acknowledged, dead letters.
  virtual size_t ReadyCount() const = 0;
  virtual size_t DelayedCount() const = 0;
  virtual size_t PendingCount() const = 0;
  virtual size_t DeadCount() const = 0;
  // Ready, delayed and pending together (nothing held: a burst may end).
  virtual size_t HeldCount() const { return ReadyCount() + DelayedCount() + PendingCount(); }
};

}  // namespace sluice
