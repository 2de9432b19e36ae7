// Retention: pruning events past their age or count.
#include "engine/retention.h"

#include <algorithm>

#include "core/spdlog.h"

namespace sluice {

Retention::Retention(Store* store, Clock* clock, RetentionOptions options)
    : store_(store), clock_(clock), options_(options) {}

int64_t Retention::MaybePrune() {
  if (options_.pruner != nullptr && !options_.pruner->load()) return kEvery;
  int64_t now = clock_->MonotonicMicros();
  if (now < next_events_) return next_events_ - now;
  next_events_ = now + kEvery;
  auto pruned = store_->PruneEvents(options_.events, clock_->NowMicros());
  if (!pruned.ok()) {
    spdlog::warn("cannot prune old events: {}", pruned.status().ToString());
  } else if (*pruned > 0) {
    spdlog::info("pruned {} events past the retention", *pruned);
  }
  return kEvery;
}

}  // namespace sluice
