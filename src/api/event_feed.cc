// EventFeed: replay, then live, deduplicated by id.
#include "api/event_feed.h"

namespace sluice::api {

EventFeed::EventFeed(Store* store, EventHub* hub, EventFilter filter, size_t max_queued,
                     bool live_only)
    : store_(store),
      hub_(hub),
      filter_(std::move(filter)),
      max_queued_(max_queued),
      live_only_(live_only),
      last_id_(filter_.after_id) {}

Status EventFeed::Start(std::function<void()> wake) {
  sub_ = hub_->Subscribe(filter_, max_queued_, std::move(wake));
  auto range = store_->EventIdRange();
  if (!range.ok()) return range.status();
  oldest_kept_ = range->first;
  if (live_only_) {
    last_id_ = range->second;
    replaying_ = false;
  }
  return Status::Ok();
}

Status EventFeed::Next(std::vector<std::shared_ptr<const Event>>* out, bool* lagged) {
  *lagged = false;
  more_ = true;
  if (replaying_) {
    EventFilter f = filter_;
    f.after_id = last_id_;
    f.limit = kChunk;
    auto events = store_->ListEvents(f);
    if (!events.ok()) return events.status();
    for (Event& e : *events) {
      last_id_ = e.id;
      out->push_back(std::make_shared<const Event>(std::move(e)));
    }
    if (static_cast<int>(events->size()) == kChunk) return Status::Ok();  // more to read
    // Caught up with the store. What was published meanwhile is queued, unless too much was:
    // then it is all in the store, and another round reads it.
    bool overflowed = false;
    auto queued = sub_->Take(&overflowed);
    if (overflowed) {
      sub_->Reset();
      return Status::Ok();
    }
    replaying_ = false;
    more_ = false;
    for (auto& e : queued) {
      if (e->id <= last_id_) continue;
      last_id_ = e->id;
      out->push_back(std::move(e));
    }
    return Status::Ok();
  }
  auto queued = sub_->Take(lagged, kChunk);
  more_ = queued.size() == kChunk;
  for (auto& e : queued) {
    if (e->id <= last_id_) continue;
    last_id_ = e->id;
    out->push_back(std::move(e));
  }
  return Status::Ok();
}

}  // namespace sluice::api
