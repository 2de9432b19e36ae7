// LocalBroker: the embedded Broker, two heaps under one mutex (ready by priority then age;
// delayed by run_at), with waits bounded by the next run_at; with leases, the tickets handed
// out and not acknowledged, by deadline.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <queue>
#include <vector>

#include "broker/broker.h"
#include "core/clock.h"

namespace sluice {

class LocalBroker : public Broker {
 public:
  explicit LocalBroker(Clock* clock, BrokerOptions options = {})
      : clock_(clock), options_(std::move(options)) {}

  void Push(const Ticket& t) override;
  std::optional<Ticket> Pop(std::chrono::milliseconds wait) override;
  void Ack(const Ticket& t) override;
  void Extend(const Ticket& t) override;
  void Close() override;
  size_t ReadyCount() const override;
  size_t DelayedCount() const override;
  size_t PendingCount() const override;
  size_t DeadCount() const override;

 private:
  struct ReadyLess {
    bool operator()(const Ticket& a, const Ticket& b) const {
      if (a.priority != b.priority) return a.priority < b.priority;
      if (a.order != b.order) return a.order > b.order;
      return a.job_id > b.job_id;
    }
  };
  struct DelayedLess {
    bool operator()(const Ticket& a, const Ticket& b) const { return a.run_at > b.run_at; }
  };
  struct Lease {
    Ticket ticket;
    int64_t deadline = 0;  // monotonic micros
  };
  void PromoteDueLocked();
  // A handed-out ticket whose lease lapsed, handed out again (or as a dead letter).
  std::optional<Ticket> ReclaimLocked();
  Ticket HandOutLocked(Ticket t);

  Clock* clock_;
  BrokerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Ticket, std::vector<Ticket>, ReadyLess> ready_;
  std::priority_queue<Ticket, std::vector<Ticket>, DelayedLess> delayed_;
  std::map<uint64_t, Lease> leased_;  // by delivery number
  uint64_t next_delivery_ = 1;
  size_t dead_ = 0;
  bool closed_ = false;
};

}  // namespace sluice
