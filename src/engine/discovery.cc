// Engine discovery: inotify events plus scans turn complete files into registered jobs.
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_set>

#include "core/clock.h"
#include "core/spdlog.h"
#include "core/text.h"
#include "engine/engine.h"

namespace sluice {

const char* const kCleanStopNs = "engine.clean_stop";

bool Engine::ChangedWithin(const std::string& name, int64_t now, int64_t mtime_ns, double quiet_s) {
  int64_t age = SatAdd(SatMul(now, 1000), mtime_ns == INT64_MIN ? INT64_MAX : -mtime_ns);
  if (age >= 0) {
    if (!ahead_.empty()) ahead_.erase(name);
    return age < static_cast<int64_t>(quiet_s * 1e9);
  }
  // A time ahead of this clock (set by rsync -t or cp -p, or by a file server whose clock is
  // ahead) says nothing of when the file last changed: it is quiet once that time has stayed
  // the same for `quiet_s` by this clock. Remembered until the file is taken, deleted or gone.
  auto [it, fresh] = ahead_.try_emplace(name, Ahead{mtime_ns, now});
  if (!fresh && it->second.mtime_ns != mtime_ns) it->second = Ahead{mtime_ns, now};
  return now - it->second.since < static_cast<int64_t>(quiet_s * 1e6);
}

void Engine::ScanSpool(bool startup) {
  // Read and examined a batch at a time, the room refilled with the oldest seen so far after
  // each: on a spool of millions the first files start at once (the listing alone takes
  // seconds) and no list of every name is ever held. Full age order holds within a batch and
  // among the files that wait for room.
  Status st = spool_.ListInBatches(4096, [&](std::vector<DirEntry>* batch) {
    std::vector<std::string> names;
    for (DirEntry& e : *batch) {
      if (e.type == FileType::kDirectory || e.type == FileType::kSymlink) continue;
      // Those waiting for room are known already.
      if (SpoolDir::IsCandidateName(e.name) && !waiting_.Contains(e.name)) {
        names.push_back(std::move(e.name));
      }
    }
    Examine(names, true, startup);
    Refill();
    return !stop_;
  });
  if (!st.ok()) spdlog::error("cannot scan {}: {}", spool_.root(), st.ToString());
}

bool Engine::UsableName(const std::string& name) {
  if (IsValidUtf8(name)) return true;
  // Every store, API and report speaks UTF-8 (PostgreSQL cannot hold such a name at all): the
  // file is left alone, said once per name (a bounded number of them).
  if (unusable_names_.size() < 10'000 && unusable_names_.insert(name).second) {
    spdlog::warn("{} is left in the spool: its name is not valid UTF-8 (rename it to take it)",
                 spool_.PathOf(name));
  }
  return false;
}

// Names ordered by their files' age, oldest first (unreadable ones last).
std::vector<std::string> Engine::OldestFirst(const std::vector<std::string>& names) {
  std::vector<std::pair<int64_t, std::string>> aged;
  aged.reserve(names.size());
  for (const std::string& name : names) {
    auto info = spool_.Stat(name);
    aged.emplace_back(info.ok() ? info->mtime_ns : INT64_MAX, name);
  }
  std::sort(aged.begin(), aged.end());
  std::vector<std::string> out;
  out.reserve(aged.size());
  for (auto& [mtime, name] : aged) out.push_back(std::move(name));
  return out;
}

void Engine::Examine(const std::vector<std::string>& given, bool from_scan, bool startup) {
  // More names than room: look at all their ages first, so the oldest are registered and
  // the newest wait (below that, the broker orders what is registered by age anyway).
  const std::vector<std::string>* names_ptr = &given;
  std::vector<std::string> sorted;
  size_t room;
  {
    std::lock_guard<std::mutex> lock(mu_);
    room = by_name_.size() < options_.max_backlog ? options_.max_backlog - by_name_.size() : 0;
  }
  if (given.size() > room && room > 0) {  // none fits: they all wait, ordered there
    sorted = OldestFirst(given);
    names_ptr = &sorted;
  }
  const std::vector<std::string>& names = *names_ptr;
  std::vector<Job> fresh;
  std::vector<int64_t> adopted;
  // One inotify batch often names a file twice, and a companion names its primary; a listing
  // without companions never repeats a name (not checked there: a spool of millions).
  bool check_seen = !from_scan || !options_.companions.empty();
  std::unordered_set<std::string> seen;
  int64_t now = clock_->NowMicros();
  for (const std::string& given_name : names) {
    std::string name = given_name;
    for (const std::string& suffix : options_.companions) {
      // A companion's arrival looks at its primary again.
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        name = name.substr(0, name.size() - suffix.size()) + ".json";
        if (!unpaired_.count(name)) name.clear();
        break;
      }
    }
    if (!SpoolDir::IsCandidateName(name) || !UsableName(name)) continue;
    if (check_seen && !seen.insert(name).second) continue;
    bool urgent = urgent_pending_.count(name) > 0;
    if (!urgent && waiting_.Contains(name)) continue;  // known, waits for room (Refill)
    size_t registered;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (by_name_.count(name)) {
        if (!from_scan) came_back_.insert(name);
        continue;
      }
      registered = by_name_.size();
    }
    std::string path = spool_.PathOf(name);
    auto info = spool_.Stat(name);
    // Symlinks, directories, FIFOs and sockets named *.json are never read and never block.
    if (!info.ok() || info->type != FileType::kRegular) {
      unsettled_.erase(name);
      ahead_.erase(name);
      urgent_pending_.erase(name);
      unpaired_.erase(name);
      continue;
    }
    bool full = registered + fresh.size() >= options_.max_backlog && !urgent;
    // After a crash each file is looked up in the store first (below); otherwise a full
    // backlog costs a file one stat.
    if (full && info->size != 0 && (clean_start_ || !startup)) {
      // Full: remember the name and its age only; Refill examines it again, whole, when
      // there is room.
      unsettled_.erase(name);
      waiting_.Add(info->mtime_ns, name);
      continue;
    }
    auto writing = env_->IsOpenForWriting(path);
    bool settling =
        (from_scan || !writing.ok()) && ChangedWithin(name, now, info->mtime_ns, options_.settle_s);
    if ((writing.ok() && *writing) || settling) {
      unsettled_.emplace(name, from_scan);  // comes back on IN_CLOSE_WRITE or the next tick
      continue;
    }
    unsettled_.erase(name);
    if (info->size == 0) {
      // Deleted only once it has stayed empty a while: a producer that writes in place may be
      // between its open() and its first write (and may have written since our stat).
      auto again = spool_.Stat(name);
      if (!again.ok() || again->size != 0 ||
          ChangedWithin(name, now, again->mtime_ns, std::max(1.0, options_.settle_s))) {
        if (again.ok()) unsettled_.emplace(name, true);
        continue;
      }
      ahead_.erase(name);
      Status st = spool_.Delete(name);
      if (st.ok()) {
        counters_.empty_deleted++;
        spdlog::info("deleted empty file {}", name);
      }
      continue;
    }
    if (!ahead_.empty()) ahead_.erase(name);
    if (!options_.companions.empty()) {
      bool absent = false;
      std::string missing = MissingCompanion(name, from_scan, now, &absent);
      if (!missing.empty()) {
        Unpaired& u = unpaired_.emplace(name, Unpaired{now, absent}).first->second;
        u.absent = absent;
        int64_t first = u.first;
        // Waits for the companion's arrival (or the next scan); overdue, it is registered and
        // its worker fails it with the reason.
        if (now - first < static_cast<int64_t>(options_.pair_timeout_s * 1e6)) continue;
        spdlog::warn("{}: {} did not arrive within {} s", name, missing, options_.pair_timeout_s);
      }
      unpaired_.erase(name);
    }
    FileIdentity id = IdentityOf(*info);
    if (startup && !clean_start_) {
      // A file whose job already finished but which was not moved before a crash.
      auto prev = store_->LatestJobForFile(spool_.root(), name);
      if (prev.ok() && prev->has_value() && IsFinal((*prev)->state) &&
          (*prev)->file.SameFileAs(id)) {
        adopted.push_back(AdoptFinishedFile(std::move(**prev)));
        continue;
      }
    }
    if (full) {
      waiting_.Add(info->mtime_ns, name);
      continue;
    }
    Job j;
    j.queue = options_.queue;
    j.kind = std::string(handler_->kind());
    j.spool = spool_.root();
    j.name = name;
    j.file = id;
    j.state = JobState::kQueued;
    j.max_attempts = options_.max_attempts;
    j.created_at = now;
    if (urgent) {
      j.priority = kPrioritised;
      urgent_pending_.erase(name);
      waiting_.Remove(name);
    }
    fresh.push_back(std::move(j));
    // Register in chunks so workers start while a large spool is still being examined.
    if (fresh.size() >= options_.max_batch) Register(&fresh);
  }
  Register(&fresh);
  if (!adopted.empty()) MoveFinished(adopted);
  waiting_count_ = waiting_.size();
  waiting_oldest_ns_ = waiting_.OldestMtime();
}

std::string Engine::MissingCompanion(const std::string& name, bool from_scan, int64_t now,
                                     bool* absent) {
  for (const std::string& suffix : options_.companions) {
    std::string companion = SpoolDir::CompanionOf(name, suffix);
    std::string path = spool_.PathOf(companion);
    auto info = spool_.Stat(companion);
    if (!info.ok()) {
      if (absent != nullptr) *absent = true;
      return companion;
    }
    // A symlink, directory or FIFO is never followed nor waited for: the job fails at once.
    if (info->type != FileType::kRegular) continue;
    auto writing = env_->IsOpenForWriting(path);
    if (writing.ok() && *writing) return companion;
    bool settling = (from_scan || !writing.ok()) &&
                    ChangedWithin(companion, now, info->mtime_ns, options_.settle_s);
    if (settling) return companion;
  }
  for (const std::string& suffix : options_.companions) {
    ahead_.erase(SpoolDir::CompanionOf(name, suffix));
  }
  return "";
}

void Engine::ExpirePairs() {
  if (unpaired_.empty()) return;
  int64_t now = clock_->NowMicros();
  // Every second a file whose companion is there but not complete is looked at again (it may
  // have settled since), and an overdue one is registered there. One whose companion is not
  // there at all waits for its arrival: inotify names it (Examine looks at its primary), or
  // the next scan lists it. Looking at all of them every second burned a core on 100,000.
  if (now - last_pair_check_ < 1'000'000) return;
  last_pair_check_ = now;
  auto timeout = static_cast<int64_t>(options_.pair_timeout_s * 1e6);
  std::vector<std::string> names;
  for (const auto& [name, u] : unpaired_) {
    if (!u.absent || now - u.first >= timeout) names.push_back(name);
  }
  if (!names.empty()) Examine(names, true, false);
}

void Engine::Refill() {
  if (waiting_.empty()) return;
  size_t registered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    registered = by_name_.size();
  }
  size_t room = registered < options_.max_backlog ? options_.max_backlog - registered : 0;
  if (room < std::max<size_t>(1, options_.max_backlog / 4) && room < waiting_.size()) return;
  // Oldest first; a file gone meanwhile is dropped there.
  Examine(waiting_.TakeOldest(room), true, false);
}

void Engine::Register(std::vector<Job>* fresh) {
  if (fresh->empty()) return;
  std::sort(fresh->begin(), fresh->end(), [](const Job& a, const Job& b) {
    return a.file.mtime_ns != b.file.mtime_ns ? a.file.mtime_ns < b.file.mtime_ns : a.name < b.name;
  });
  // Ids are allocated here, so a worker may start on a file while its registration commits:
  // the file stays in the spool until the job's final state (committed in the same or a later
  // transaction than the registration) is durable. A crash before that finds the file
  // unknown or unfinished and takes it again.
  // Ids first: when the store cannot give them, nothing is registered this round (the files
  // stay and the next scan tries again).
  for (Job& j : *fresh) {
    auto id = ids_->Next();
    if (!id.ok()) {
      spdlog::warn("spool {}: {}; registering later", spool_.root(), id.status().ToString());
      fresh->clear();
      return;
    }
    j.id = *id;
  }
  std::vector<Ticket> tickets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Job& j : *fresh) {
      by_name_[j.name] = j.id;
      jobs_[j.id] = Tracked{j};
      tickets.push_back(Ticket{j.id, j.priority, j.file.mtime_ns, j.run_at});
    }
  }
  writer_->AddJobs(std::move(*fresh));
  fresh->clear();
  for (const Ticket& t : tickets) broker_->Push(t);
}

void Engine::ScanDeferred() {
  if (!deferred_listed_.empty()) return RegisterDeferred();  // the last listing is not done
  auto entries = spool_.ListDeferred();
  if (!entries.ok()) return;
  for (size_t i = 0; i < entries->size();) {
    std::lock_guard<std::mutex> lock(mu_);  // a block at a time: workers take it too
    for (size_t end = std::min(entries->size(), i + 4096); i < end; ++i) {
      DirEntry& e = (*entries)[i];
      if (!SpoolDir::IsCandidateName(e.name) || e.type != FileType::kRegular) continue;
      if (!deferred_.count(e.name)) deferred_listed_.push_back(std::move(e.name));
    }
  }
  RegisterDeferred();
}

void Engine::RegisterDeferred() {
  // A chunk at a time, so that a folder of millions never sits in the writer's queue at once.
  constexpr size_t kChunk = 10000;
  std::vector<Job> fresh;
  int64_t now = clock_->NowMicros();
  while (!deferred_listed_.empty() && fresh.size() < kChunk) {
    std::string name = std::move(deferred_listed_.back());
    deferred_listed_.pop_back();
    if (!UsableName(name)) continue;
    auto info = spool_.StatDeferred(name);
    if (!info.ok() || info->type != FileType::kRegular || info->size == 0) continue;
    Job j;
    j.queue = options_.queue;
    j.kind = std::string(handler_->kind());
    j.spool = spool_.root();
    j.name = std::move(name);
    j.file = IdentityOf(*info);
    j.state = JobState::kDeferred;
    j.max_attempts = options_.max_attempts;
    j.created_at = now;
    fresh.push_back(std::move(j));
  }
  if (!fresh.empty()) {
    for (Job& j : fresh) {
      auto id = ids_->Next();
      if (!id.ok()) {
        spdlog::warn("spool {}: {}; registering later", spool_.root(), id.status().ToString());
        deferred_listed_.clear();  // listed again at the next scan
        return;
      }
      j.id = *id;
    }
    deferred_registered_ += fresh.size();
    // Known to Promote() and queued to the writer at once: a promotion's state change is
    // then always written after the registration (AddJobs never waits).
    std::lock_guard<std::mutex> lock(mu_);
    for (const Job& j : fresh) {
      deferred_[j.name] = Deferred::Of(j);
    }
    writer_->AddJobs(std::move(fresh));
  }
  if (deferred_listed_.empty() && deferred_registered_ > 0) {
    spdlog::info("{} deferred files registered (they run when promoted)", deferred_registered_);
    deferred_registered_ = 0;
  }
}

void Engine::TakeUrgent() {
  std::vector<std::string> names;
  std::vector<int64_t> registered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (urgent_.empty()) return;
    for (const std::string& name : urgent_) {
      auto it = by_name_.find(name);
      if (it != by_name_.end()) {
        registered.push_back(it->second);  // registered meanwhile
      } else {
        names.push_back(name);
        urgent_pending_.insert(name);
      }
    }
    urgent_.clear();
  }
  for (int64_t id : registered) (void)Prioritize(id);
  Examine(names, false, false);
}

void Engine::TakeReplaced() {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    names.swap(replaced_);
  }
  // From an event, not a scan: taken as soon as it is not open for writing.
  if (!names.empty()) Examine(names, false, false);
}

void Engine::RetryMoves() {
  std::vector<int64_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, t] : jobs_) {
      if (t.move_pending && t.move_failures > 0) ids.push_back(id);
    }
  }
  if (!ids.empty()) MoveFinished(ids);
}

bool Engine::BurstFinished() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!unsettled_.empty() || !waiting_.empty() || writer_->Pending() != 0 || !api_jobs_.empty() ||
        !deferred_listed_.empty()) {
      return false;
    }
    if (!by_name_.empty()) {
      size_t stuck = 0;
      for (auto& [id, t] : jobs_) stuck += t.move_pending && t.move_failures >= 5;
      if (stuck == 0 || stuck != by_name_.size()) return false;
      final_status_ = Status::IOError(std::to_string(stuck) +
                                      " finished files could not be moved out of the spool");
      return true;
    }
  }
  // A run from cron has no other time to prune in: what is past the retention goes first
  // (chunk after chunk now that the writer is idle; a signal still stops the drain).
  if (writer_->PruningCatchingUp()) return false;
  // A file whose companion is there but not complete yet is waited for; one whose companion
  // is not there at all does not hold the drain (see LeaveUnpaired). Looked at once the rest
  // is done: each is a stat.
  for (const auto& [name, u] : unpaired_) {
    for (const std::string& suffix : options_.companions) {
      if (spool_.Stat(SpoolDir::CompanionOf(name, suffix)).ok()) return false;
    }
  }
  // Looks idle: one last scan for anything that landed meanwhile.
  ScanSpool(false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!by_name_.empty() || !unsettled_.empty()) return false;
  }
  return LeaveUnpaired();
}

bool Engine::LeaveUnpaired() {
  // What still waits for a companion: overdue when the file was written longer than
  // --pair-timeout ago (it fails now, and the drain goes on), else left in the spool for the
  // next run, named in the log.
  std::vector<std::string> overdue;
  size_t left = 0;
  int64_t now = clock_->NowMicros();
  auto timeout = static_cast<int64_t>(options_.pair_timeout_s * 1e6);
  for (auto& [name, u] : unpaired_) {
    auto info = spool_.Stat(name);
    if (!info.ok()) continue;
    int64_t written = info->mtime_ns / 1000;
    if (now - written >= timeout) {
      u.first = std::min(u.first, written);
      overdue.push_back(name);
    } else if (++left <= 10) {
      spdlog::warn(
          "{} left in the spool: {} has not arrived (it fails {:.0f} s after {} was "
          "written)",
          name, MissingCompanion(name, true, now), options_.pair_timeout_s, name);
    }
  }
  if (!overdue.empty()) {
    Examine(overdue, true, false);
    return false;
  }
  if (left > 10)
    spdlog::warn("{} more files left in the spool without their companions", left - 10);
  return true;
}

bool Engine::CheckSpool() {
  int64_t now = clock_->MonotonicMicros();
  if (now - last_spool_check_ < 250'000) {
    std::lock_guard<std::mutex> lock(health_mu_);
    return health_.ok();
  }
  last_spool_check_ = now;
  Status st = spool_.Check();
  Status before;
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    before = health_;
    health_ = st;
  }
  if (before.ok() && !st.ok()) {
    spdlog::error(
        "spool {} cannot be used: {}; nothing is taken or moved until it is fixed "
        "(/readyz answers 503)",
        spool_.root(), st.message());
  } else if (!before.ok() && !st.ok() && before.message() != st.message()) {
    spdlog::error("spool {} cannot be used: {}", spool_.root(), st.message());
  } else if (!before.ok() && st.ok()) {
    spdlog::info("spool {} is usable again; watching and scanning it", spool_.root());
  }
  if (st.ok() && (!before.ok() || spool_.generation() != spool_generation_)) {
    // A spool created again is a new directory: the old watch died with the old one, and
    // what landed in between is found by a scan.
    spool_generation_ = spool_.generation();
    Status watched = watcher_->Rewatch(spool_.root());
    if (!watched.ok()) spdlog::error("watching {}: {}", spool_.root(), watched.ToString());
    ScanSpool(false);
    ScanDeferred();
  }
  return st.ok();
}

Status Engine::Health() const {
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    if (!health_.ok()) return health_;
  }
  return StoreWritable();
}

Status Engine::StoreWritable() const {
  std::string failing = writer_->Failing();
  if (failing.empty()) return Status::Ok();
  return Status::Unavailable("the store cannot be written (retrying until it can): " + failing);
}

void Engine::DiscoveryLoop() {
  pthread_setname_np(pthread_self(), "sluice-discover");
  // Landing-to-start latency is this thread's wake-up time: ask for a little more CPU
  // priority than the workers (refused without CAP_SYS_NICE, which is fine).
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), -5);
  ScanDeferred();
  ScanSpool(true);
  int64_t next_scan = clock_->MonotonicMicros() + static_cast<int64_t>(options_.interval_s * 1e6);
  int64_t next_move_retry = 0;
  std::vector<std::string> names;
  while (!stop_) {
    // A drain ends as soon as its last job did: look often (a watching daemon sleeps longer).
    int timeout_ms = options_.burst ? 5 : unsettled_.empty() ? 250 : 20;
    names.clear();
    bool overflow = false;
    Status st = watcher_->Wait(timeout_ms, &names, &overflow);
    if (!st.ok()) spdlog::error("watching {}: {}", spool_.root(), st.ToString());
    if (stop_) break;
    if (!CheckSpool()) {
      if (options_.burst) {  // a drain cannot finish on a spool it cannot use
        final_status_ = Health();
        done_ = true;
        stop_ = true;
        break;
      }
      ExpireLeases();  // running jobs still have workers to watch over
      continue;
    }
    TakeUrgent();
    TakeReplaced();
    Examine(names, false, false);
    int64_t mono = clock_->MonotonicMicros();
    if (overflow || mono >= next_scan) {
      if (overflow) spdlog::warn("inotify queue overflowed; rescanning {}", spool_.root());
      ScanSpool(false);
      ScanDeferred();
      // The scan is the safety net behind inotify: on a spool of millions, where one takes a
      // second or more, it runs at most a twentieth of the time, not every interval.
      int64_t after = clock_->MonotonicMicros();
      next_scan =
          after + std::max(static_cast<int64_t>(options_.interval_s * 1e6), 20 * (after - mono));
    }
    if (!unsettled_.empty()) {
      std::vector<std::string> from_scan, from_events;
      for (auto& [name, scan] : unsettled_) (scan ? from_scan : from_events).push_back(name);
      Examine(from_events, false, false);
      Examine(from_scan, true, false);
    }
    Refill();
    // The rest of a large deferred/ listing, as the writer keeps up.
    if (!deferred_listed_.empty() && writer_->Pending() < options_.max_batch) RegisterDeferred();
    ExpirePairs();
    ExpireLeases();
    AdoptOrphans();
    if (mono >= next_move_retry) {
      RetryMoves();
      next_move_retry = mono + 1'000'000;
    }
    MaybeReportProgress(false);
    if (options_.burst && BurstFinished()) {
      done_ = true;
      stop_ = true;
      break;
    }
  }
}

void Engine::MaybeReportProgress(bool force) {
  int64_t now = clock_->MonotonicMicros();
  double dt = (now - last_progress_) / 1e6;
  if (!force && dt < options_.progress_interval_s) return;
  uint64_t done = counters_.succeeded + counters_.failed;
  uint64_t objects = counters_.objects, bytes = counters_.bytes;
  size_t backlog = Backlog();
  if (!force && done == last_progress_done_ && backlog == 0) {
    last_progress_ = now;
    return;
  }
  double files_s = dt > 0 ? (done - last_progress_done_) / dt : 0;
  double objects_s = dt > 0 ? (objects - last_progress_objects_) / dt : 0;
  double mb_s = dt > 0 ? (bytes - last_progress_bytes_) / dt / 1e6 : 0;
  std::string eta = files_s > 0 ? std::to_string(static_cast<int64_t>(backlog / files_s)) + "s"
                                : (backlog ? "unknown" : "0s");
  if (!force) {
    spdlog::info(
        "progress: {} done ({} ok, {} failed, {} retries), {:.0f} files/s, {:.0f} objects/s, "
        "{:.1f} MB/s, backlog {}, ETA {}",
        done, counters_.succeeded.load(), counters_.failed.load(), counters_.retried.load(),
        files_s, objects_s, mb_s, backlog, eta);
  }
  last_progress_ = now;
  last_progress_done_ = done;
  last_progress_objects_ = objects;
  last_progress_bytes_ = bytes;
}

}  // namespace sluice
