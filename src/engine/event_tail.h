// EventTail: with a store other processes write to as well (PostgreSQL), live events come
// from the store, not from this process's commits: a thread reads every event committed
// after the last one it read, in id order, and appends them to the hub. It reads when the
// store says events were committed (LISTEN/NOTIFY), and at least every second.
//
// The store makes events visible in id order (see PgStore), so reading "after the last id"
// never skips one committed later with a smaller id: live readers of any daemon see every
// event of every daemon, once, in id order.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "engine/event_hub.h"
#include "store/store.h"

namespace sluice {

class EventTail {
 public:
  EventTail(Store* store, EventHub* hub);
  ~EventTail();
  // Starts from the newest event stored now (older ones are the store's to replay) and puts
  // the hub in FedFromStore mode.
  Status Start();
  void Stop();

 private:
  void Loop();

  Store* store_;
  EventHub* hub_;
  int64_t last_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sluice
