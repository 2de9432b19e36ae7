// EventFeed: the events passing a filter, each once and in id order, first from the store
// (replay after a resume point) and then live from the hub. Shared by SSE and followed logs.
//
// It subscribes before it reads the store: an event committed before the subscription is in
// the store; one committed after it is published to the subscription; ids already handed
// out are skipped, so there is no gap and no duplicate. When the live queue overflows during
// replay, it simply reads the store again; when it overflows live, the caller is told (lagged).
// Not thread-safe: one reader (the connection's I/O thread).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "engine/event_hub.h"
#include "store/store.h"

namespace sluice::api {

class EventFeed {
 public:
  // Starts after filter.after_id; with `live_only`, after the newest event stored now instead.
  EventFeed(Store* store, EventHub* hub, EventFilter filter, size_t max_queued, bool live_only);
  Status Start(std::function<void()> wake);
  // The next events (at most a chunk), possibly none yet. *lagged: the reader fell more than
  // max_queued events behind live; the feed can only be resumed from last_id() anew.
  Status Next(std::vector<std::shared_ptr<const Event>>* out, bool* lagged);
  int64_t last_id() const { return last_id_; }
  // The oldest event the store still keeps when the feed started (0: none).
  int64_t oldest_kept() const { return oldest_kept_; }
  bool replaying() const { return replaying_; }
  // Whether the last Next stopped short of what is there now (a chunk's worth, or another
  // round of replay due): call it again without waiting for a wake.
  bool more() const { return more_; }

 private:
  static constexpr int kChunk = 500;
  Store* store_;
  EventHub* hub_;
  EventFilter filter_;
  size_t max_queued_;
  bool live_only_;
  std::shared_ptr<EventHub::Subscription> sub_;
  int64_t last_id_ = 0;
  int64_t oldest_kept_ = 0;
  bool replaying_ = true;
  bool more_ = true;
};

}  // namespace sluice::api
