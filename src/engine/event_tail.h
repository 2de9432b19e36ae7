// EventTail: with a store other processes write to as well (PostgreSQL), live events come
// from the store, not from this process's commits: a thread reads every event committed
// after the last one it read, in id order, and appends them to the hub. It reads when the
// store says events were committed (LISTEN/NOTIFY), and at least every second.
//
// The store makes events visible in id order (see PgStore), so reading "after the last id"
// never skips one committed later with a smaller id: live readers of any daemon see every
// event of every daemon, once, in id order.
//
// With a fan-out (a cluster's Redis: broker/event_fanout.h), live events come from there
// instead: every process publishes what it commits, and the tail hands them on in id order.
// Ids are dense (each commit takes the next ones, a rolled-back commit takes none), so an id
// missing while higher ones have come is an event on its way, or one whose publication was
// lost: after 100 ms without it, the tail reads the store from its last id. It also reads
// the store after every second of quiet (a lost event with none after it), and only the
// store while the fan-out is down. Either way each event goes out once, in id order.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <thread>

#include "broker/event_fanout.h"
#include "engine/event_hub.h"
#include "store/store.h"

namespace sluice {

class EventTail {
 public:
  EventTail(Store* store, EventHub* hub, EventFanOut* fanout = nullptr);
  ~EventTail();
  // Starts from the newest event stored now (older ones are the store's to replay) and puts
  // the hub in FedFromStore mode.
  Status Start();
  void Stop();

 private:
  void Loop();
  void LoopFanOut();
  // Appends what the store holds after last_ (a page at a time, up to `pages`); whether it
  // read the store.
  bool ReadStore(int pages);
  // Appends the events of ahead_ that follow last_ without a hole.
  void DeliverAhead();

  Store* store_;
  EventHub* hub_;
  EventFanOut* fanout_;
  std::map<int64_t, Event> ahead_;  // from the fan-out, above a hole
  int64_t last_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sluice
