// EventHub: live fan-out of committed events to subscribers (SSE clients, followed logs).
//
// The writer publishes each batch's events after its commit, in id order, so a subscriber
// that subscribes first and then reads the store up to the newest id misses nothing: every
// event is either in the store when it reads, or published after it subscribed.
//
// The hub keeps ONE window of the newest events (`capacity` of them), shared by every
// subscriber; a subscriber is a position in that window and a filter, so a reader costs a
// few words however far behind it is, and an event (with its encoded frame, Event::wire) is
// held once however many readers it has (and not at all while there is no reader: one that
// subscribes later starts after them). A subscriber more than `max_behind` events behind
// the newest is marked lagged: it can resume from the store after the last event it took.
// Thread safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "store/event.h"

namespace sluice {

class EventHub {
 public:
  // `encode`, when given, turns each published event into what live readers send
  // (Event::wire), once per event however many readers there are.
  using Encoder = std::function<std::string(const Event&)>;
  explicit EventHub(Encoder encode = nullptr, size_t capacity = 10000);
  ~EventHub();

  class Subscription {
   public:
    ~Subscription();
    // Takes at most `max` of the events passing the filter published since the last Take,
    // in id order. *lagged: the subscriber fell more than max_behind events behind; what it
    // is given is what came before the gap, and it gets nothing more until Reset.
    std::vector<std::shared_ptr<const Event>> Take(bool* lagged, size_t max = SIZE_MAX);
    // Forgets the lag and everything not taken: from now on only newly published events
    // (the caller resumes from the store instead).
    void Reset();

   private:
    friend class EventHub;
    EventHub* hub_ = nullptr;
    EventFilter filter_;
    size_t max_behind_ = 0;
    // Shared, so waking copies a pointer (not the function and what it holds) per subscriber.
    std::shared_ptr<const std::function<void()>> wake_;
    uint64_t next_ = 0;  // position of the next event to look at (hub_->mu_)
    bool lagged_ = false;
    bool wake_pending_ = false;  // woken and not taken since: no need to wake again
  };

  // Events passing `filter` (its after_id and limit are ignored) go to the subscription;
  // `wake` runs (from the publishing thread, without the hub's lock) when it has something
  // to take. `max_behind` is capped at the hub's capacity. The subscription ends when the
  // last reference to it goes; the hub must outlive it.
  std::shared_ptr<Subscription> Subscribe(EventFilter filter, size_t max_behind,
                                          std::function<void()> wake);
  // What this process just committed. Fanned out at once, unless the hub is fed from the
  // store (FedFromStore): then an EventTail brings them, with other processes' events, in
  // id order.
  void Publish(const std::vector<Event>& events);
  // Events read back from the store, in id order (the EventTail's way in).
  void Append(const std::vector<Event>& events);
  // From now on Publish does not append: a store shared with other processes is the only
  // source (through an EventTail); it hands the events to `fanout` instead, when given (a
  // cluster's wire, which the tail reads back).
  void FedFromStore(std::function<void(const std::vector<Event>&)> fanout = nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    fanout_ = std::move(fanout);
    fed_from_store_ = true;
  }

  size_t subscribers() const;
  uint64_t published() const { return published_.load(); }
  uint64_t lagged() const { return lagged_.load(); }

 private:
  Encoder encode_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<const Event>> window_;  // the newest events
  uint64_t first_ = 0;                               // position of window_.front()
  std::vector<Subscription*> subs_;
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> lagged_{0};
  std::atomic<bool> fed_from_store_{false};
  std::function<void(const std::vector<Event>&)> fanout_;  // under mu_ to set; read after
};

}  // namespace sluice
