// Reconciler: the store is the truth, the broker only carries ids. A waiting HTTP job that no
// stream holds (Redis restarted empty, FLUSHALL, a process died between a commit and its
// publish, a ticket dropped because its job could not be claimed) is published again here.
// One process of the cluster runs it at a time (the "reconciler" lease), every
// --reconcile-interval. Publishing a job twice is harmless: the store's claim lets one
// delivery run it, and the other is dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <set>

#include "broker/broker.h"
#include "core/clock.h"
#include "store/store.h"

namespace sluice {

class Reconciler {
 public:
  // `held`: the job ids the broker holds now (ready, handed out, or delayed), in any queue.
  using HeldIds = std::function<Result<std::set<int64_t>>()>;
  Reconciler(Store* store, Broker* broker, HeldIds held, Clock* clock)
      : store_(store), broker_(broker), held_(std::move(held)), clock_(clock) {}

  // One pass: publishes every queued, retrying, or running-with-a-lapsed-claim HTTP job the
  // broker does not hold. How many it published.
  Result<size_t> RunOnce();
  // Jobs published again since start.
  uint64_t published() const { return published_.load(); }

 private:
  Store* store_;
  Broker* broker_;
  HeldIds held_;
  Clock* clock_;
  std::atomic<uint64_t> published_{0};
};

}  // namespace sluice
