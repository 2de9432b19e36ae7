// EventTail: the store's events, in id order, into the hub.
#include "engine/event_tail.h"

#include <pthread.h>

#include <chrono>
#include <iterator>
#include <thread>

#include "core/spdlog.h"

namespace sluice {

namespace {
constexpr size_t kMaxAhead = 100'000;  // events held above a hole in the ids
}  // namespace

EventTail::EventTail(Store* store, EventHub* hub, EventFanOut* fanout)
    : store_(store), hub_(hub), fanout_(fanout) {}

EventTail::~EventTail() { Stop(); }

Status EventTail::Start() {
  auto range = store_->EventIdRange();
  if (!range.ok()) return range.status();
  last_ = range->second;
  if (fanout_ != nullptr) {
    hub_->FedFromStore(
        [fanout = fanout_](const std::vector<Event>& events) { fanout->PublishEvents(events); });
  } else {
    hub_->FedFromStore();
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sluice-tail");
    if (fanout_ != nullptr) {
      LoopFanOut();
    } else {
      Loop();
    }
  });
  return Status::Ok();
}

void EventTail::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void EventTail::Loop() {
  while (!stop_) {
    EventFilter f;
    f.after_id = last_;
    f.limit = 1000;
    auto events = store_->ListEvents(f);
    if (events.ok() && !events->empty()) {
      last_ = events->back().id;
      hub_->Append(*events);
      continue;  // more may be waiting
    }
    // Short waits, so that Stop is prompt; a notice or a second, whichever comes first.
    for (int waited = 0; !stop_ && waited < 1000; waited += 200) {
      auto notified = store_->WaitForEvents(200);
      if (notified.ok() && *notified) break;
      if (!notified.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

bool EventTail::ReadStore(int pages) {
  for (int page = 0; page < pages && !stop_; ++page) {
    EventFilter f;
    f.after_id = last_;
    f.limit = 1000;
    auto events = store_->ListEvents(f);
    if (!events.ok()) return false;
    if (events->empty()) break;
    last_ = events->back().id;
    hub_->Append(*events);
    if (events->size() < 1000) break;
  }
  ahead_.erase(ahead_.begin(), ahead_.upper_bound(last_));
  return true;
}

void EventTail::DeliverAhead() {
  std::vector<Event> ready;
  while (!ahead_.empty() && ahead_.begin()->first <= last_ + 1) {
    if (ahead_.begin()->first == last_ + 1) {
      ready.push_back(std::move(ahead_.begin()->second));
      last_++;
    }
    ahead_.erase(ahead_.begin());
  }
  if (!ready.empty()) hub_->Append(ready);
}

void EventTail::LoopFanOut() {
  using Clock = std::chrono::steady_clock;
  auto last_store = Clock::now();
  Clock::time_point hole_since{};
  bool hole = false;
  while (!stop_) {
    auto got = fanout_->ReadEvents(100);
    if (!got.ok()) {
      // The fan-out is down: the store, as without one.
      ReadStore(10);
      last_store = Clock::now();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    for (Event& e : *got) {
      if (e.id > last_) ahead_.emplace(e.id, std::move(e));
    }
    DeliverAhead();
    auto now = Clock::now();
    if (ahead_.empty()) {
      hole = false;
    } else if (!hole) {
      hole = true;
      hole_since = now;
    }
    bool hole_stays = hole && now - hole_since > std::chrono::milliseconds(100);
    if (hole_stays || now - last_store > std::chrono::seconds(1)) {
      if (ReadStore(10)) last_store = now;
      DeliverAhead();
      // Entries above a hole the store cannot fill are no events of the store's (something
      // else wrote them to Redis): at most kMaxAhead are kept, the farthest dropped first.
      while (ahead_.size() > kMaxAhead) ahead_.erase(std::prev(ahead_.end()));
      hole = !ahead_.empty();
      hole_since = now;
    }
  }
}

}  // namespace sluice
