// What the engines and queuedir runners of one daemon share. One database means one job id
// sequence; one event stream means events must reach live readers in id order, so a commit
// and the publication of its events happen under one lock (`commit_order`).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "engine/event_hub.h"

namespace sluice {

class JobIds {
 public:
  // Ids handed out from now on are at least `first`.
  void AtLeast(int64_t first) {
    int64_t cur = next_.load();
    while (cur < first && !next_.compare_exchange_weak(cur, first)) {
    }
  }
  int64_t Next() { return next_.fetch_add(1); }

 private:
  std::atomic<int64_t> next_{1};
};

struct EngineShared {
  JobIds* ids = nullptr;               // null: the engine's own
  EventHub* hub = nullptr;             // null: the engine's own
  std::mutex* commit_order = nullptr;  // null: no other writer
};

}  // namespace sluice
