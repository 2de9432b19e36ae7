// LocalBroker: the embedded Broker, two heaps under one mutex (ready by priority then age;
// delayed by run_at), with waits bounded by the next run_at.
#pragma once

#include <condition_variable>
#include <mutex>
#include <queue>
#include <vector>

#include "broker/broker.h"
#include "core/clock.h"

namespace sluice {

class LocalBroker : public Broker {
 public:
  explicit LocalBroker(Clock* clock) : clock_(clock) {}

  void Push(const Ticket& t) override;
  std::optional<Ticket> Pop(std::chrono::milliseconds wait) override;
  void Close() override;
  size_t ReadyCount() const override;
  size_t DelayedCount() const override;

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
  void PromoteDueLocked();

  Clock* clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Ticket, std::vector<Ticket>, ReadyLess> ready_;
  std::priority_queue<Ticket, std::vector<Ticket>, DelayedLess> delayed_;
  bool closed_ = false;
};

}  // namespace sluice
