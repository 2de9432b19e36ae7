// EventHub: one shared window of events, a position per subscriber.
#include "engine/event_hub.h"

#include <algorithm>

namespace sluice {

EventHub::EventHub(Encoder encode, size_t capacity)
    : encode_(std::move(encode)), capacity_(std::max<size_t>(1, capacity)) {}

EventHub::~EventHub() {
  std::lock_guard<std::mutex> lock(mu_);
  for (Subscription* s : subs_) s->hub_ = nullptr;
}

EventHub::Subscription::~Subscription() {
  if (hub_ == nullptr) return;
  std::lock_guard<std::mutex> lock(hub_->mu_);
  if (hub_ == nullptr) return;
  auto& subs = hub_->subs_;
  subs.erase(std::remove(subs.begin(), subs.end(), this), subs.end());
}

std::vector<std::shared_ptr<const Event>> EventHub::Subscription::Take(bool* lagged, size_t max) {
  std::vector<std::shared_ptr<const Event>> out;
  *lagged = false;
  if (hub_ == nullptr) return out;
  std::lock_guard<std::mutex> lock(hub_->mu_);
  wake_pending_ = false;
  uint64_t end = hub_->first_ + hub_->window_.size();
  if (lagged_) {  // told already: nothing more until Reset
    next_ = end;
    *lagged = true;
    return out;
  }
  if (end - next_ > max_behind_) {
    lagged_ = true;
    hub_->lagged_++;
    end = next_ + max_behind_;  // what came before the gap, then nothing more
  }
  *lagged = lagged_;
  if (next_ < hub_->first_) next_ = hub_->first_;  // dropped from the window: part of the gap
  for (; next_ < end && out.size() < max; ++next_) {
    const auto& e = hub_->window_[next_ - hub_->first_];
    if (Matches(filter_, *e)) out.push_back(e);
  }
  if (lagged_) next_ = hub_->first_ + hub_->window_.size();
  return out;
}

void EventHub::Subscription::Reset() {
  if (hub_ == nullptr) return;
  std::lock_guard<std::mutex> lock(hub_->mu_);
  next_ = hub_->first_ + hub_->window_.size();
  lagged_ = false;
  wake_pending_ = false;
}

std::shared_ptr<EventHub::Subscription> EventHub::Subscribe(EventFilter filter, size_t max_behind,
                                                            std::function<void()> wake) {
  auto sub = std::make_shared<Subscription>();
  sub->hub_ = this;
  sub->filter_ = std::move(filter);
  sub->max_behind_ = std::clamp<size_t>(max_behind, 1, capacity_);
  if (wake) sub->wake_ = std::make_shared<const std::function<void()>>(std::move(wake));
  std::lock_guard<std::mutex> lock(mu_);
  sub->next_ = first_ + window_.size();
  subs_.push_back(sub.get());
  return sub;
}

void EventHub::Publish(const std::vector<Event>& events) {
  if (!fed_from_store_) return Append(events);
  std::function<void(const std::vector<Event>&)> fanout;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fanout = fanout_;
  }
  if (fanout) fanout(events);
}

void EventHub::Append(const std::vector<Event>& events) {
  if (events.empty()) return;
  {
    // No reader: nobody will take these from the window (a reader starts at its end when it
    // subscribes; one subscribing meanwhile finds them in the store, committed before they
    // are published), so they are neither copied nor encoded.
    std::lock_guard<std::mutex> lock(mu_);
    if (subs_.empty()) {
      published_ += events.size();
      return;
    }
  }
  std::vector<std::shared_ptr<const Event>> shared;
  shared.reserve(events.size());
  for (const Event& e : events) {
    auto copy = std::make_shared<Event>(e);
    if (encode_) copy->wire = std::make_shared<const std::string>(encode_(*copy));
    shared.push_back(std::move(copy));
  }
  published_ += events.size();
  std::vector<std::shared_ptr<const std::function<void()>>> to_wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& e : shared) window_.push_back(std::move(e));
    while (window_.size() > capacity_) {
      window_.pop_front();
      ++first_;
    }
    uint64_t end = first_ + window_.size();
    uint64_t batch = end - events.size();
    for (Subscription* s : subs_) {
      if (s->wake_pending_ || !s->wake_) continue;
      // Woken when the batch has something for it, or when it just fell too far behind (so
      // it can say so and stop).
      bool wake = end - s->next_ > s->max_behind_;
      for (uint64_t i = std::max(batch, first_); !wake && i < end; ++i) {
        wake = Matches(s->filter_, *window_[i - first_]);
      }
      if (wake) {
        s->wake_pending_ = true;
        to_wake.push_back(s->wake_);
      }
    }
  }
  for (const auto& wake : to_wake) (*wake)();
}

size_t EventHub::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subs_.size();
}

}  // namespace sluice
