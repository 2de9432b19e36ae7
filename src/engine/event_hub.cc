// EventHub: bounded per-subscriber queues, woken once per batch.
#include "engine/event_hub.h"

namespace sluice {

std::vector<std::shared_ptr<const Event>> EventHub::Subscription::Take(bool* lagged) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const Event>> out;
  out.swap(queue_);
  *lagged = lagged_;
  wake_pending_ = false;
  return out;
}

void EventHub::Subscription::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
  lagged_ = false;
  wake_pending_ = false;
}

std::shared_ptr<EventHub::Subscription> EventHub::Subscribe(EventFilter filter, size_t max_queued,
                                                            std::function<void()> wake) {
  auto sub = std::make_shared<Subscription>();
  sub->filter_ = std::move(filter);
  sub->max_queued_ = std::max<size_t>(1, max_queued);
  sub->wake_ = std::move(wake);
  std::lock_guard<std::mutex> lock(mu_);
  subs_.push_back(sub);
  return sub;
}

void EventHub::Publish(const std::vector<Event>& events) {
  if (events.empty()) return;
  std::vector<std::shared_ptr<const Event>> shared;
  shared.reserve(events.size());
  for (const Event& e : events) shared.push_back(std::make_shared<const Event>(e));
  published_ += events.size();
  std::vector<std::shared_ptr<Subscription>> to_wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t kept = 0;
    for (size_t i = 0; i < subs_.size(); ++i) {
      std::shared_ptr<Subscription> sub = subs_[i].lock();
      if (!sub) continue;  // its reader went away
      subs_[kept++] = subs_[i];
      bool wake = false;
      {
        std::lock_guard<std::mutex> sub_lock(sub->mu_);
        for (const auto& e : shared) {
          if (sub->lagged_) break;
          if (!Matches(sub->filter_, *e)) continue;
          if (sub->queue_.size() >= sub->max_queued_) {
            sub->lagged_ = true;
            lagged_++;
            break;
          }
          sub->queue_.push_back(e);
          if (!sub->wake_pending_) {
            sub->wake_pending_ = true;
            wake = true;
          }
        }
        // A lagged reader is woken too, so it can say so and stop.
        if (sub->lagged_ && !sub->wake_pending_) {
          sub->wake_pending_ = true;
          wake = true;
        }
      }
      if (wake) to_wake.push_back(std::move(sub));
    }
    subs_.resize(kept);
  }
  for (const auto& sub : to_wake) {
    if (sub->wake_) sub->wake_();
  }
}

size_t EventHub::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& w : subs_) n += w.expired() ? 0 : 1;
  return n;
}

}  // namespace sluice
