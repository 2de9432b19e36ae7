// What the engines and queuedir runners of one daemon share. One database means one job id
// sequence; one event stream means events must reach live readers in id order, so a commit
// and the publication of its events happen under one lock (`commit_order`).
#pragma once

#include <cstdint>
#include <mutex>

#include "engine/event_hub.h"
#include "engine/read_budget.h"
#include "store/store.h"

namespace sluice {

// Job ids, taken from the store in blocks (Store::ReserveJobIds): unique among every process
// that shares the database, without a round trip per job.
class JobIds {
 public:
  static constexpr int64_t kBlock = 100;
  // The store ids come from; the first call wins (engines sharing ids attach the same one).
  void Attach(Store* store) {
    std::lock_guard<std::mutex> lock(mu_);
    if (store_ == nullptr) store_ = store;
  }
  // The next id; Unavailable (the store's reason) when a new block cannot be had.
  Result<int64_t> Next() {
    std::lock_guard<std::mutex> lock(mu_);
    if (next_ == end_) {
      if (store_ == nullptr) return Status::Internal("job ids taken before a store was attached");
      auto first = store_->ReserveJobIds(kBlock);
      if (!first.ok()) return first.status().Annotate("the store cannot give job ids");
      next_ = *first;
      end_ = *first + kBlock;
    }
    return next_++;
  }

 private:
  std::mutex mu_;
  Store* store_ = nullptr;
  int64_t next_ = 0, end_ = 0;  // the block being handed out: [next_, end_)
};

struct EngineShared {
  JobIds* ids = nullptr;               // null: the engine's own
  EventHub* hub = nullptr;             // null: the engine's own
  std::mutex* commit_order = nullptr;  // null: no other writer
  ReadBudget* reading = nullptr;       // null: the engine's own (EngineOptions)
};

}  // namespace sluice
