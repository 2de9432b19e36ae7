// EventFanOut: committed events carried live from every process of a cluster to every other
// (Redis: one stream, PREFIX:events). It is a wire, not the record: the store keeps every
// event, and a reader that finds a hole in the ids (an event whose publication was lost: a
// process died between its commit and its publish, Redis restarted empty) reads it from the
// store (engine/event_tail.h).
#pragma once

#include <vector>

#include "core/status.h"
#include "store/event.h"

namespace sluice {

class EventFanOut {
 public:
  virtual ~EventFanOut() = default;
  // Sends events this process committed (with their ids). Never fails: what is not sent is
  // found in the store by the readers.
  virtual void PublishEvents(const std::vector<Event>& events) = 0;
  // Events published by any process since the last call (in publication order, which across
  // processes is not id order), waiting up to `block_ms` for some. Unavailable while the
  // wire is down.
  virtual Result<std::vector<Event>> ReadEvents(int block_ms) = 0;
};

}  // namespace sluice
