// Reconciler::RunOnce: the store's waiting HTTP jobs against the broker's tickets.
#include "engine/reconciler.h"

#include <vector>

#include "core/spdlog.h"

namespace sluice {

Result<size_t> Reconciler::RunOnce() {
  // The store first, the broker after: a job published between the two is seen held; one
  // registered after the listing is the next pass's.
  std::vector<Job> waiting;
  for (JobState state : {JobState::kQueued, JobState::kRetrying, JobState::kRunning}) {
    JobFilter filter;
    filter.state = state;
    filter.limit = 1000;
    while (true) {
      auto page = store_->ListJobs(filter);
      if (!page.ok()) return page.status();
      for (Job& j : *page) {
        if (j.spool.empty()) waiting.push_back(std::move(j));
      }
      if (page->size() < static_cast<size_t>(filter.limit)) break;
      filter.before_id = page->back().id;
    }
  }
  if (waiting.empty()) return size_t{0};
  auto held = held_();
  if (!held.ok()) return held.status();
  int64_t now = clock_->NowMicros();
  size_t published = 0;
  for (const Job& j : waiting) {
    if (held->count(j.id)) continue;
    // A running job is someone's until its claim lapses; then any worker may take it over.
    if (j.state == JobState::kRunning && j.lease_until >= now) continue;
    int64_t due = j.state == JobState::kRetrying ? j.run_at : 0;
    broker_->Push(Ticket{j.id, j.priority, j.created_at * 1000, due, BrokerQueue(j.queue, j.kind)});
    ++published;
  }
  published_ += published;
  if (published > 0) {
    spdlog::info("reconciler: published {} waiting job(s) again that the broker did not hold",
                 published);
  }
  return published;
}

}  // namespace sluice
