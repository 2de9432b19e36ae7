// Retention: what the store keeps of the past. Every minute, events older than
// --event-max-age or beyond the newest --event-max-count are pruned. The writer thread runs it
// between its commits (Writer), so pruning never competes with a batch for the database.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/clock.h"
#include "store/store.h"

namespace sluice {

struct RetentionOptions {
  EventRetention events;
  // When set: prune only while it is true. On a database several processes share, one prunes
  // at a time: the holder of the "pruner" lease.
  const std::atomic<bool>* pruner = nullptr;
};

class Retention {
 public:
  Retention(Store* store, Clock* clock, RetentionOptions options);

  // Prunes what is due. Returns the microseconds until it is due again.
  int64_t MaybePrune();

  static constexpr int64_t kEvery = 60'000'000;  // micros between rounds

 private:
  Store* store_;
  Clock* clock_;
  RetentionOptions options_;
  int64_t next_events_ = 0;  // monotonic micros; 0: at the first call
};

}  // namespace sluice
