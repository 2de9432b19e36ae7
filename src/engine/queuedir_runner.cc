// QueuedirRunner: claim, run, and settle queuedir items.
#include "engine/queuedir_runner.h"

#include <pthread.h>

#include <algorithm>

#include "core/spdlog.h"
#include "core/text.h"
#include "spool/watcher.h"

namespace sluice {

QueuedirRunner::QueuedirRunner(QueuedirOptions options, Store* store, Handler* handler, Env* env,
                               Clock* clock, EngineShared shared)
    : options_(std::move(options)),
      dir_(env, options_.dir),
      store_(store),
      handler_(handler),
      env_(env),
      clock_(clock),
      shared_(shared) {
  if (shared_.ids == nullptr) shared_.ids = &own_ids_;
  dir_.LockRecreated(options_.dir_lock);
}

QueuedirRunner::~QueuedirRunner() { Stop(); }

Status QueuedirRunner::Start() {
  SLUICE_RETURN_IF_ERROR(dir_.Prepare());
  SLUICE_RETURN_IF_ERROR(store_->DefineTables(handler_->tables()));
  shared_.ids->Attach(store_);
  SLUICE_RETURN_IF_ERROR(Recover());
  dispatcher_ = std::thread([this] { DispatchLoop(); });
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  return Status::Ok();
}

void QueuedirRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cancelled_ = true;  // as the engine does on stop (HandlerContext::cancelled)
  cv_.notify_all();
  dispatch_cv_.notify_all();
  if (dispatcher_.joinable()) dispatcher_.join();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

Job QueuedirRunner::JobFor(const std::string& item) {
  std::string id = QueueDir::BaseId(item);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it != jobs_.end()) return it->second;
  Job j;
  // Without an id the item cannot be recorded: wait for the store (it is back, or we stop).
  for (int delay_ms = 100;; delay_ms = std::min(delay_ms * 2, 5000)) {
    auto id = shared_.ids->Next();
    if (id.ok()) {
      j.id = *id;
      break;
    }
    if (stop_) break;
    spdlog::warn("queuedir {}: {}; retrying in {} ms", dir_.root(), id.status().ToString(),
                 delay_ms);
    mu_.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    mu_.lock();
  }
  j.queue = options_.queue;
  j.kind = std::string(handler_->kind());
  j.spool = dir_.root();
  j.name = id;
  j.max_attempts = options_.max_retries + 1;
  j.created_at = clock_->NowMicros();
  j.state = JobState::kQueued;
  jobs_[id] = j;
  return j;
}

Status QueuedirRunner::Save(const Job& job, const std::vector<std::string>& log, bool with_state) {
  WriteBatch b;
  int64_t now = clock_->NowMicros();
  bool insert = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    insert = stored_.insert(job.id).second;
  }
  if (insert) {
    b.new_jobs.push_back(job);  // with its state event
    with_state = false;
  }
  JobUpdate u = UpdateOf(job);
  for (const std::string& line : log) u.events.push_back(LogEvent(job, now, line));
  if (with_state) u.events.push_back(StateEvent(job, now));
  b.updates.push_back(std::move(u));
  // Committed and published in order with the daemon's other writers.
  std::unique_lock<std::mutex> order;
  if (shared_.commit_order != nullptr) order = std::unique_lock<std::mutex>(*shared_.commit_order);
  Status st = store_->Write(&b);
  if (st.ok() && shared_.hub != nullptr) shared_.hub->Publish(b.appended);
  if (!st.ok()) {
    spdlog::error("queuedir {}: recording job {}: {}", dir_.root(), job.id, st.ToString());
  }
  // Not stored after all: the next save inserts it (an update would change no row). An
  // ended job's save is its last: its id is not needed any more (else one id a job, for ever).
  if ((!st.ok() && insert) || IsFinal(job.state)) {
    std::lock_guard<std::mutex> lock(mu_);
    stored_.erase(job.id);
  }
  return st;
}

Status QueuedirRunner::Recover() {
  auto unfinished = store_->UnfinishedJobs();
  if (!unfinished.ok()) return unfinished.status();
  for (Job& j : *unfinished) {
    if (j.spool != dir_.root()) continue;
    stored_.insert(j.id);
    jobs_[j.name] = std::move(j);
  }
  auto cur = dir_.ListCur();
  if (!cur.ok()) return cur.status();
  int64_t now = clock_->NowMicros();
  for (const std::string& item : *cur) {
    std::string id = QueueDir::BaseId(item);
    int attempt = QueueDir::Retries(item) + 1;
    auto last = store_->LatestJobForFile(dir_.root(), id);
    if (last.ok() && last->has_value() && (*last)->state == JobState::kSucceeded &&
        (*last)->attempts == attempt) {
      // Its success was recorded; only the deletion was cut short.
      SLUICE_RETURN_IF_ERROR(dir_.Remove(item));
      continue;
    }
    if (last.ok() && last->has_value() && (*last)->state == JobState::kRetrying &&
        (*last)->attempts == attempt) {
      // It failed and was waiting in cur/ for its retry, as command_runner keeps it: it
      // waits on (the due time is in the store, so the delay survives the restart).
      waiting_[item] = std::max(now, (*last)->run_at);
      continue;
    }
    // It was in progress when the daemon died: that attempt counts.
    Job job = JobFor(item);
    job.attempts = attempt;
    job.interruptions += 1;
    job.last_tried = now;
    HandlerOutput none;
    std::string why = "interrupted: the daemon stopped during attempt " + std::to_string(attempt);
    (void)Save(job, {why}, false);
    Fail(&job, item, Status::Unavailable(why), none, false);
  }
  // Jobs the store still has open whose item is neither waiting nor in progress.
  auto waiting = dir_.ListNew();
  if (!waiting.ok()) return waiting.status();
  std::map<std::string, bool> present;
  for (const auto& w : *waiting) present[QueueDir::BaseId(w.item)] = true;
  for (const auto& [item, due] : waiting_) present[QueueDir::BaseId(item)] = true;
  auto dead = dir_.ListDead();
  std::map<std::string, bool> in_dead;
  if (dead.ok()) {
    for (const std::string& d : *dead) in_dead[QueueDir::BaseId(d)] = true;
  }
  std::vector<std::string> gone;
  for (auto& [id, job] : jobs_) {
    if (present.count(id)) continue;
    job.state = JobState::kFailed;
    job.finished_at = now;
    job.error = in_dead.count(id)
                    ? JobError{"dead", "found in dead/ at start (moved there before a crash)", ""}
                    : JobError{"vanished", "its item is no longer in the queuedir", ""};
    (void)Save(job, {});
    gone.push_back(id);
  }
  for (const std::string& id : gone) jobs_.erase(id);
  return dir_.Sync();
}

size_t QueuedirRunner::JobsHeld() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size() + stored_.size();
}

Status QueuedirRunner::Health() const {
  std::lock_guard<std::mutex> lock(health_mu_);
  return health_;
}

bool QueuedirRunner::CheckFolders() {
  Status st = dir_.Check();
  Status before;
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    before = health_;
    health_ = st;
  }
  if (!st.ok() && (before.ok() || before.message() != st.message())) {
    spdlog::error("queuedir {} cannot be used: {}; nothing is claimed until it is fixed",
                  dir_.root(), st.message());
  } else if (!before.ok() && st.ok()) {
    spdlog::info("queuedir {} is usable again", dir_.root());
  }
  return st.ok();
}

void QueuedirRunner::DispatchLoop() {
  pthread_setname_np(pthread_self(), "sluice-qdir");
  auto watcher = Watcher::Create(dir_.NewDir());
  if (!watcher.ok())
    spdlog::warn("queuedir: no inotify ({}); polling", watcher.status().ToString());
  int64_t last_touch = 0;
  std::vector<std::string> names;  // what the watcher saw come into new/
  bool rescan = true;
  while (true) {
    int wait_ms = 1000;
    bool busy = false;  // every worker has an item: wait for one to be free, not for new/
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) break;
      // Claim only for free workers: a claimed item that waits would count as in progress.
      size_t free = idle_ > static_cast<int>(claimed_.size()) ? idle_ - claimed_.size() : 0;
      lock.unlock();
      bool usable = CheckFolders();
      // new/ may have been deleted and created again (its watch ended with it): watching it
      // anew is one cheap call when it is the same folder.
      if (usable && watcher.ok()) (void)watcher->Rewatch(dir_.NewDir());
      if (!usable) {
        wait_ms = 250;
        rescan = true;  // new/ may be another folder once it is usable again
      } else {
        int64_t now = clock_->NowMicros();
        if (now - last_touch >= 1'000'000) {
          TouchAll();  // as command_runner does every loop: producers' cleanup spares them
          last_touch = now;
        }
        int64_t next_due = RequeueDue(now);
        if (next_due > 0) {
          wait_ms = static_cast<int>(std::clamp<int64_t>((next_due - now) / 1000 + 1, 1, 1000));
        }
        if (free > 0) {
          if (rescan || !watcher.ok() || now >= next_rescan_) {
            RescanNew(now);
            rescan = false;
          } else {
            NoteNew(names);
          }
          names.clear();
          std::vector<std::string> taken;
          while (!new_items_.empty()) {  // oldest first
            if (taken.size() >= free) {
              wait_ms = 0;
              break;
            }
            std::string item = new_items_.begin()->second;
            new_items_.erase(new_items_.begin());
            new_mtime_.erase(item);
            if (dir_.Claim(item).ok()) taken.push_back(std::move(item));
          }
          lock.lock();
          for (std::string& item : taken) {
            running_.insert(item);
            claimed_.push_back(std::move(item));
          }
          lock.unlock();
          if (!taken.empty()) cv_.notify_all();
        } else {
          busy = true;
        }
      }
    }
    bool overflow = false;
    if (busy) {
      std::unique_lock<std::mutex> lock(mu_);
      dispatch_cv_.wait_for(lock, std::chrono::milliseconds(std::max(wait_ms, 1)),
                            [this] { return stop_ || idle_ > static_cast<int>(claimed_.size()); });
    } else if (watcher.ok()) {
      (void)watcher->Wait(std::max(wait_ms, 1), &names, &overflow);
      if (overflow) rescan = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(wait_ms, 200)));
    }
  }
}

void QueuedirRunner::RescanNew(int64_t now) {
  int64_t started = clock_->MonotonicMicros();
  auto items = dir_.ListNew();
  if (!items.ok()) {
    spdlog::error("queuedir {}: {}", dir_.root(), items.status().ToString());
    return;
  }
  new_items_.clear();
  new_mtime_.clear();
  for (auto& w : *items) {
    new_mtime_[w.item] = w.mtime_ns;
    new_items_.emplace(w.mtime_ns, std::move(w.item));
  }
  // The safety net behind the watcher: every second, or a twentieth of the time when new/ is
  // so large that listing it takes longer.
  int64_t took = clock_->MonotonicMicros() - started;
  next_rescan_ = now + std::max<int64_t>(1'000'000, 20 * took);
}

void QueuedirRunner::NoteNew(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    auto w = dir_.LookNew(name);
    auto known = new_mtime_.find(name);
    if (known != new_mtime_.end()) {  // seen again (written, then closed): its time anew
      new_items_.erase({known->second, name});
      new_mtime_.erase(known);
    }
    if (!w.ok()) continue;  // gone already, or not an item
    new_mtime_[name] = w->mtime_ns;
    new_items_.emplace(w->mtime_ns, name);
  }
}

void QueuedirRunner::TouchAll() {
  std::vector<std::string> items;
  {
    std::lock_guard<std::mutex> lock(mu_);
    items.assign(running_.begin(), running_.end());
    for (const auto& [item, due] : waiting_) items.push_back(item);
  }
  for (const std::string& item : items) {
    Status st = dir_.Touch(item);
    if (st.IsNotFound()) {
      // Someone took it out of cur/ (a producer's cleanup moves old items back into new/):
      // a running command finds out when it ends; a waiting item is simply gone.
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_.erase(item)) {
        spdlog::warn("queuedir {}: {} left cur/ while it waited for its retry", dir_.root(), item);
      }
    }
  }
}

int64_t QueuedirRunner::RequeueDue(int64_t now) {
  std::vector<std::string> due;
  int64_t next = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [item, when] : waiting_) {
      if (when <= now) {
        due.push_back(item);
      } else if (next == 0 || when < next) {
        next = when;
      }
    }
    for (const std::string& item : due) waiting_.erase(item);
  }
  for (const std::string& item : due) {
    auto moved = dir_.Requeue(item, QueueDir::Retries(item) + 1);
    if (!moved.ok()) {
      spdlog::error("queuedir {}: requeueing {}: {}", dir_.root(), item, moved.status().ToString());
    }
  }
  if (!due.empty()) (void)dir_.Sync();
  return next;
}

void QueuedirRunner::WorkerLoop() {
  pthread_setname_np(pthread_self(), "sluice-worker");
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ++idle_;
    dispatch_cv_.notify_one();  // a dispatcher waiting for a free worker claims for this one
    cv_.wait(lock, [this] { return stop_ || !claimed_.empty(); });
    --idle_;
    if (claimed_.empty()) return;  // stopping
    std::string item = std::move(claimed_.front());
    claimed_.pop_front();
    lock.unlock();
    RunItem(item);
    lock.lock();
  }
}

void QueuedirRunner::RunItem(const std::string& item) {
  Job job = JobFor(item);
  job.state = JobState::kRunning;
  job.attempts = QueueDir::Retries(item) + 1;
  job.last_tried = clock_->NowMicros();
  job.run_at = 0;
  (void)Save(job, {});
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_[job.name] = job;
  }
  HandlerContext ctx;
  ctx.path = dir_.CurPath(item);
  ctx.max_file_bytes = options_.max_file_bytes;
  ctx.env = env_;
  ctx.clock = clock_;
  ctx.cancelled = &cancelled_;
  // The item's log file as command_runner writes it; Sluice's own lines go to the events.
  ctx.raw_log = [this, &item](std::string_view text) { (void)dir_.AppendRaw(item, text); };
  ctx.live_log = [this, &job](std::vector<std::string> lines) { (void)Save(job, lines, false); };
  spdlog::info("Running {}", item);
  HandlerOutput out;
  Status st = handler_->Run(ctx, &out);
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(item);
  }
  if (!dir_.InCur(item)) {
    // Taken out of cur/ while it ran (by a producer's cleanup, most likely, which puts it
    // back into new/ as its next retry): the item goes on as whoever moved it decided, and
    // this attempt is not a success, whatever its command said.
    spdlog::error(
        "queuedir {}: conflict: {} left cur/ while its command ran; not counted as "
        "done",
        dir_.root(), item);
    job.state = JobState::kQueued;
    job.error = {"conflict",
                 "the item left cur/ while its command ran (" +
                     (st.ok() ? std::string("it succeeded") : st.message()) + ")",
                 ""};
    out.log.push_back("conflict: " + job.error.message);
    (void)Save(job, out.log);
    std::lock_guard<std::mutex> lock(mu_);
    jobs_[job.name] = job;
    return;
  }
  if (st.ok()) {
    job.state = JobState::kSucceeded;
    job.finished_at = clock_->NowMicros();
    job.result = out.summary;
    job.error = {};
    // Recorded first: a crash before the deletion only leaves the deletion to do.
    bool saved = Save(job, out.log).ok();
    EndJob(job.name);
    if (saved) {
      Status rm = dir_.Remove(item);
      if (!rm.ok()) spdlog::error("queuedir: deleting finished {}: {}", item, rm.ToString());
    }
    counters_.succeeded++;
    return;
  }
  if (!out.log.empty()) (void)Save(job, out.log, false);
  // command_runner requeues an item whose command could not start (an OSError), whatever
  // the reason, until its retries are spent.
  Fail(&job, item, st, out, !st.IsTransient() && out.error_code != "command_failed_to_start");
}

void QueuedirRunner::Fail(Job* job, const std::string& item, const Status& st,
                          const HandlerOutput& out, bool permanent) {
  int64_t now = clock_->NowMicros();
  job->error.code = out.error_code.empty() ? std::string(CodeName(st.code())) : out.error_code;
  job->error.message = Shortened(st.message());
  job->error.detail = out.error_detail;
  int retries = QueueDir::Retries(item);
  // command_runner writes this line before it asks to requeue (which may murder the item).
  if (job->error.code == "command_failed_to_start") {
    (void)dir_.AppendRaw(item, "\nFailed with OSError; requeuing in " +
                                   std::to_string(static_cast<int64_t>(options_.retry_time_s)) +
                                   " seconds\n");
  } else if (!permanent) {
    spdlog::warn("{} failed; requeuing", item);
  }
  if (!permanent && retries < options_.max_retries) {
    int64_t delay = SecondsToMicros(options_.retry_time_s);
    job->state = JobState::kRetrying;
    job->run_at = SatAdd(now, delay);
    if (delay > 0) {
      // It waits in cur/, as command_runner keeps it, until it is due (TouchAll keeps it
      // fresh; RequeueDue moves it into new/ as <id>.<retries+1>).
      (void)Save(*job, {});
      std::lock_guard<std::mutex> lock(mu_);
      waiting_[item] = job->run_at;
      jobs_[job->name] = *job;
      counters_.retried++;
      return;
    }
    auto next = dir_.Requeue(item, retries + 1);
    if (next.ok()) {
      (void)dir_.Sync();
      (void)Save(*job, {});
      counters_.retried++;
      std::lock_guard<std::mutex> lock(mu_);
      jobs_[job->name] = *job;
      return;
    }
    spdlog::error("queuedir: requeueing {}: {}; it goes to dead/", item, next.status().ToString());
  }
  if (!permanent && retries >= options_.max_retries) {
    spdlog::info("Maximum retry count exceeded; murdering {}", item);
    job->error.message = "gave up after " + std::to_string(retries + 1) +
                         " attempts; last error: " + job->error.message;
  }
  EndJob(job->name);
  Status killed = dir_.Kill(item);
  if (!killed.ok()) spdlog::error("queuedir: moving {} to dead/: {}", item, killed.ToString());
  (void)dir_.Sync();
  job->state = JobState::kFailed;
  job->finished_at = now;
  (void)Save(*job, {"dead: [" + job->error.code + "] " + job->error.message});
  counters_.dead++;
}

void QueuedirRunner::EndJob(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.erase(id);
}

}  // namespace sluice
