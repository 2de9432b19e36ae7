// Retention: pruning events past their age or count, and ended jobs past theirs.
#include "engine/retention.h"

#include <algorithm>

#include "core/spdlog.h"

namespace sluice {

Retention::Retention(Store* store, Env* env, Clock* clock, RetentionOptions options)
    : store_(store),
      env_(env),
      clock_(clock),
      options_(options),
      last_log_(clock->MonotonicMicros()) {
  ages_[0].states = {JobState::kSucceeded, JobState::kCancelled};
  ages_[0].max_age_s = options_.jobs.max_age_s;
  ages_[1].states = {JobState::kFailed};
  ages_[1].max_age_s = options_.jobs.failed_max_age_s;
}

Retention::~Retention() {
  if (unlogged_ > 0) spdlog::info("pruned {} ended jobs past the retention so far", unlogged_);
}

int64_t Retention::MaybePrune(bool idle) {
  if (options_.pruner != nullptr && !options_.pruner->load()) {
    next_events_ = next_jobs_ = 0;  // a new holder starts over
    catching_up_ = false;
    ages_[0].after = ages_[1].after = EndedJobsPosition{};
    return kNotPrunerEvery;
  }
  int64_t now = clock_->MonotonicMicros();
  if (now >= next_events_) {
    next_events_ = now + kEvery;
    PruneEvents();
  }
  if (now >= next_jobs_) {
    bool more = PruneJobs();
    catching_up_ = more;
    int64_t took = clock_->MonotonicMicros() - now;
    // Catching up: at once while the writer is idle (a batch that comes waits one chunk at
    // most), else after nine times this chunk's time.
    int64_t pause = idle ? 0 : std::max<int64_t>(9 * took, 1000);
    // A chunk the store failed on (a server restarting, a full disk) is taken again soon.
    next_jobs_ = more ? now + took + pause : now + (failing_ ? kAfterFailure : kEvery);
  }
  return std::max<int64_t>(0, std::min(next_events_, next_jobs_) - clock_->MonotonicMicros());
}

void Retention::PruneEvents() {
  auto pruned = store_->PruneEvents(options_.events, clock_->NowMicros());
  if (!pruned.ok()) {
    spdlog::warn("cannot prune old events: {}", pruned.status().ToString());
  } else if (*pruned > 0) {
    spdlog::info("pruned {} events past the retention", *pruned);
  }
}

bool Retention::PruneJobs() {
  bool more = false;
  bool failed = false;
  // Said once while the store keeps failing, and once when it works again.
  auto fail = [&](const char* what, const Status& st) {
    failed = true;
    if (!failing_) spdlog::warn("cannot {} past the retention: {}", what, st.ToString());
  };
  int64_t now = clock_->NowMicros();
  for (Age& age : ages_) {
    if (age.max_age_s <= 0) continue;
    int64_t before = now - age.max_age_s * 1'000'000;
    auto found = store_->EndedJobsBefore(age.states, before, age.after, kChunk);
    if (!found.ok()) {
      fail("look for jobs", found.status());
      continue;
    }
    if (found->empty()) {
      age.after = EndedJobsPosition{};  // the walk is over: the next round starts again
      continue;
    }
    std::vector<int64_t> ids;
    for (const Job& j : *found) {
      if (!FileStillThere(j)) ids.push_back(j.id);
    }
    auto gone = store_->DeleteEndedJobs(ids, age.states, before);
    if (!gone.ok()) {
      fail("delete jobs", gone.status());
      continue;  // the same chunk again next time
    }
    // A walk that reached the end starts again from the oldest at the next round: the jobs
    // kept for a file still in its spool are looked at again (and go once it has moved), and
    // so is one whose end was stamped by a clock behind this one.
    bool full = found->size() == static_cast<size_t>(kChunk);
    age.after = full ? EndedJobsPosition::Of(found->back()) : EndedJobsPosition{};
    more = more || full;
    unlogged_ += *gone;
  }
  if (failing_ && !failed) spdlog::info("pruning ended jobs works again");
  failing_ = failed;
  int64_t mono = clock_->MonotonicMicros();
  if (unlogged_ > 0 && (!more || mono - last_log_ >= kEvery)) {
    spdlog::info("pruned {} ended jobs past the retention{}", unlogged_, more ? " so far" : "");
    unlogged_ = 0;
    last_log_ = mono;
  }
  return more;
}

bool Retention::FileStillThere(const Job& job) {
  if (job.spool.empty() || job.name.empty()) return false;  // sent over HTTP: no file
  if (job.file.ino == 0) return ItemStillInCur(job);
  auto info = env_->Stat(job.spool + "/" + job.name);
  if (!info.ok() || info->type != FileType::kRegular) return false;
  FileIdentity now{info->dev, info->ino, info->size, info->mtime_ns, 0};
  return job.file.SameFileAs(now);
}

bool Retention::ItemStillInCur(const Job& job) {
  // The item of attempt N is <id>.<N-1> (<id> or <id>.0 for the first), as the queuedir's
  // recovery reads it.
  std::string cur = job.spool + "/cur/" + job.name;
  std::vector<std::string> items = {cur + "." + std::to_string(std::max(0, job.attempts - 1))};
  if (job.attempts <= 1) items.push_back(cur);
  for (const std::string& item : items) {
    auto info = env_->Stat(item);
    if (info.ok() && info->type == FileType::kRegular) return true;
  }
  return false;
}

}  // namespace sluice
