// EventHub: live fan-out of committed events to subscribers (SSE clients, followed logs).
//
// The writer publishes each batch's events after its commit, in id order, so a subscriber
// that subscribes first and then reads the store up to the newest id misses nothing: every
// event is either in the store when it reads, or published after it subscribed.
//
// A subscriber has a bounded queue. When it is full the subscriber stops receiving and is
// marked lagged; it can resume from the store after the last event it handled.
// Thread safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "store/event.h"

namespace sluice {

class EventHub {
 public:
  class Subscription {
   public:
    // Takes the events queued so far (in id order). *lagged: events were dropped after them.
    std::vector<std::shared_ptr<const Event>> Take(bool* lagged);
    // Forgets the queue and the lag (the caller resumes from the store instead).
    void Reset();

   private:
    friend class EventHub;
    EventFilter filter_;
    size_t max_queued_ = 0;
    std::function<void()> wake_;
    std::mutex mu_;
    std::vector<std::shared_ptr<const Event>> queue_;
    bool lagged_ = false;
    bool wake_pending_ = false;  // wake_ called and Take not yet: no need to call it again
  };

  // Events passing `filter` (its after_id and limit are ignored) go to the subscription;
  // `wake` runs (from the publishing thread) when its queue goes from empty to not empty.
  // The subscription ends when the last reference to it goes.
  std::shared_ptr<Subscription> Subscribe(EventFilter filter, size_t max_queued,
                                          std::function<void()> wake);
  void Publish(const std::vector<Event>& events);

  size_t subscribers() const;
  uint64_t published() const { return published_.load(); }
  uint64_t lagged() const { return lagged_.load(); }

 private:
  mutable std::mutex mu_;
  std::vector<std::weak_ptr<Subscription>> subs_;
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> lagged_{0};
};

}  // namespace sluice
