// EventTail: the store's events, in id order, into the hub.
#include "engine/event_tail.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace sluice {

EventTail::EventTail(Store* store, EventHub* hub) : store_(store), hub_(hub) {}

EventTail::~EventTail() { Stop(); }

Status EventTail::Start() {
  auto range = store_->EventIdRange();
  if (!range.ok()) return range.status();
  last_ = range->second;
  hub_->FedFromStore();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sluice-tail");
    Loop();
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

}  // namespace sluice
