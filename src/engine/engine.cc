// Engine: start, stop, and what happens after each group commit (file moves).
#include "engine/engine.h"

#include <pthread.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>

#include "broker/local/local_broker.h"
#include "core/json.h"
#include "core/spdlog.h"
#include "core/text.h"

namespace sluice {

namespace {

std::string AbsolutePath(const std::string& p) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  return ec ? p : abs.lexically_normal().string();
}

}  // namespace

Engine::Engine(EngineOptions options, Store* store, Handler* handler, Env* env, Clock* clock,
               EngineObserver* observer, EngineShared shared)
    : options_(std::move(options)),
      store_(store),
      handler_(handler),
      env_(env),
      clock_(clock),
      observer_(observer),
      spool_(env, AbsolutePath(options_.spool_dir), options_.save),
      broker_(std::make_unique<LocalBroker>(clock)),
      hub_ptr_(shared.hub != nullptr ? shared.hub : &hub_),
      rng_(std::random_device{}()),
      ids_(shared.ids != nullptr ? shared.ids : &own_ids_) {
  if (shared.reading == nullptr) {
    own_reading_ = std::make_unique<ReadBudget>(options_.max_reading_bytes);
  }
  reading_ = shared.reading != nullptr ? shared.reading : own_reading_.get();
  for (const TableSpec& t : handler_->tables()) {
    int col = -1;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (t.columns[i].name == "origin") col = static_cast<int>(i);
    }
    origin_column_.push_back(col);
  }
  spool_.LockRecreated(options_.spool_lock);
  writer_ = std::make_unique<Writer>(
      store, options_.max_batch,
      [this](WriteBatch& committed, std::vector<Job>& dropped) { AfterCommit(committed, dropped); },
      env_, clock_, options_.retention, shared.commit_order);
  if (!options_.owner.empty() && !options_.holds.empty()) {
    writer_->HoldLeases(options_.owner, options_.holds, options_.on_lost_lease);
  }
}

Engine::~Engine() {
  RequestStop();
  (void)Wait();
}

Status Engine::Start() {
  for (const std::string& suffix : options_.companions) {
    SLUICE_RETURN_IF_ERROR(SpoolDir::CheckCompanionSuffix(suffix));
  }
  SLUICE_RETURN_IF_ERROR(spool_.Prepare());
  // The watch is set BEFORE the first scan: a file landing in between is seen by one or both.
  auto watcher = Watcher::Create(spool_.root());
  if (!watcher.ok()) return watcher.status();
  watcher_ = std::make_unique<Watcher>(std::move(*watcher));
  SLUICE_RETURN_IF_ERROR(store_->DefineTables(handler_->tables()));
  started_at_ = clock_->MonotonicMicros();
  last_progress_ = started_at_;
  auto clean = store_->GetValue(kCleanStopNs, spool_.root());
  // No marker: this spool never ran here, so no finished-but-unmoved file can exist either.
  clean_start_ = clean.ok() && (!clean->has_value() || **clean == "1");
  // From now on the spool is live: a crash may leave finished files unmoved, and the next
  // start must look each file up. Recorded before any job can finish.
  SLUICE_RETURN_IF_ERROR(store_->PutValue(kCleanStopNs, spool_.root(), "0"));
  ids_->Attach(store_);
  writer_->Start();
  mover_ = std::thread([this] { MoverLoop(); });
  Status st = Recover();
  if (!st.ok()) {
    writer_->StopAndDrain();
    {
      std::lock_guard<std::mutex> lock(mover_mu_);
      mover_stop_ = true;
    }
    mover_cv_.notify_all();
    mover_.join();
    return st;
  }
  for (int i = 0; i < std::max(1, options_.max_workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  discovery_ = std::thread([this] { DiscoveryLoop(); });
  started_ = true;
  return Status::Ok();
}

void Engine::RequestStop() {
  stop_ = true;
  if (watcher_) watcher_->Wake();
}

Status Engine::Wait() {
  if (!started_.exchange(false)) return final_status_;
  if (discovery_.joinable()) discovery_.join();
  // Workers finish the job in hand; the broker hands out nothing more. A store that cannot
  // be written is waited for Writer::kStopGrace, not for ever.
  writer_->BeginStop();
  broker_->Close();
  for (auto& w : workers_) w.join();
  workers_.clear();
  writer_->StopAndDrain();
  Status given_up = writer_->Abandoned();
  {
    std::lock_guard<std::mutex> lock(mover_mu_);
    mover_stop_ = true;
  }
  mover_cv_.notify_all();
  if (mover_.joinable()) mover_.join();
  bool moves_pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    moves_pending = false;
    for (auto& [id, t] : jobs_) moves_pending = moves_pending || t.move_pending;
  }
  if (!given_up.ok()) {
    // Not a clean stop: the next start looks every spool file up in the store.
    if (final_status_.ok()) final_status_ = given_up;
  } else if (!moves_pending) {
    Status st = store_->PutValue(kCleanStopNs, spool_.root(), "1");
    if (!st.ok()) spdlog::warn("cannot record the clean stop: {}", st.ToString());
  }
  done_ = true;
  MaybeReportProgress(true);
  return final_status_;
}

Status Engine::Reload() {
  Status st = handler_->Reload();
  if (st.ok()) {
    spdlog::info("configuration reloaded");
  } else {
    spdlog::error("reload failed, keeping the old configuration: {}", st.ToString());
  }
  return st;
}

EngineSnapshot Engine::Snapshot() const {
  EngineSnapshot s;
  int64_t oldest_ns = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.backlog = by_name_.size() + api_jobs_.size() + waiting_count_.load();
    oldest_ns = waiting_oldest_ns_.load();
    for (const auto& [id, t] : jobs_) {
      if (IsFinal(t.job.state) || t.job.file.mtime_ns == 0) continue;
      if (oldest_ns == 0 || t.job.file.mtime_ns < oldest_ns) oldest_ns = t.job.file.mtime_ns;
    }
  }
  if (oldest_ns > 0) {
    s.oldest_pending_s = std::max(0.0, (clock_->NowMicros() * 1000.0 - oldest_ns) / 1e9);
  }
  std::lock_guard<std::mutex> lock(stats_mu_);
  s.failures_by_code = failures_by_code_;
  s.objects = objects_by_origin_;
  return s;
}

size_t Engine::Backlog() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_name_.size() + api_jobs_.size() + waiting_count_.load();
}

void Engine::Record(const Job& job, std::vector<ObjectRow> rows, std::vector<std::string> log) {
  JobUpdate u = UpdateOf(job);
  u.rows = std::move(rows);
  int64_t now = clock_->NowMicros();
  for (const std::string& line : log) u.events.push_back(LogEvent(job, now, line));
  u.events.push_back(StateEvent(job, now));
  writer_->Update(std::move(u));
}

void Engine::RecordLog(const Job& job, std::vector<std::string> lines) {
  if (lines.empty()) return;
  JobUpdate u = UpdateOf(job);
  int64_t now = clock_->NowMicros();
  for (const std::string& line : lines) u.events.push_back(LogEvent(job, now, line));
  writer_->Update(std::move(u));
}

void Engine::AfterCommit(WriteBatch& committed, std::vector<Job>& dropped) {
  counters_.commits++;
  hub_ptr_->Publish(committed.appended);
  std::vector<int64_t> finals;
  {
    std::lock_guard<std::mutex> lock(mu_);
    counters_.registered += committed.new_jobs.size();
    for (const JobUpdate& u : committed.updates) {
      auto it = jobs_.find(u.job_id);
      if (it == jobs_.end()) continue;
      Job& j = it->second.job;
      j.state = u.state;
      j.attempts = u.attempts;
      j.interruptions = u.interruptions;
      j.priority = u.priority;
      j.run_at = u.run_at;
      j.last_tried = u.last_tried;
      j.finished_at = u.finished_at;
      j.error = u.error;
      j.result = u.result;
      if (IsFinal(u.state)) {
        it->second.move_pending = true;
        finals.push_back(u.job_id);
        (u.state == JobState::kSucceeded ? counters_.succeeded : counters_.failed)++;
      } else if (u.state == JobState::kRetrying) {
        counters_.retried++;
        broker_->Push(Ticket{j.id, j.priority, j.file.mtime_ns, j.run_at});
      }
    }
    for (const Job& j : dropped) {
      by_name_.erase(j.name);
      if (came_back_.erase(j.name)) replaced_.push_back(j.name);
      jobs_.erase(j.id);
      auto d = deferred_.find(j.name);  // a deferred file is registered again by a scan
      if (d != deferred_.end() && d->second.id == j.id) deferred_.erase(d);
    }
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    const auto& tables = handler_->tables();
    for (const JobUpdate& u : committed.updates) {
      if (u.state == JobState::kFailed) failures_by_code_[u.error.code]++;
      if (u.state != JobState::kSucceeded) continue;
      for (const ObjectRow& row : u.rows) {
        auto t = static_cast<size_t>(row.table);
        if (t >= tables.size()) continue;
        const std::string* origin = nullptr;
        if (origin_column_[t] >= 0) {
          origin = std::get_if<std::string>(&row.values[static_cast<size_t>(origin_column_[t])]);
        }
        std::pair<std::string, std::string> key{tables[t].name, origin ? *origin : ""};
        auto it = objects_by_origin_.find(key);
        if (it == objects_by_origin_.end()) {
          if (objects_by_origin_.size() >= EngineSnapshot::kMaxOriginSeries) {
            key.second = EngineSnapshot::kOtherOrigins;
          }
          it = objects_by_origin_.try_emplace(std::move(key), 0).first;
        }
        it->second++;
      }
    }
  }
  if (finals.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mover_mu_);
    mover_queue_.insert(mover_queue_.end(), finals.begin(), finals.end());
  }
  mover_cv_.notify_one();
}

void Engine::MoverLoop() {
  pthread_setname_np(pthread_self(), "sluice-mover");
  while (true) {
    std::vector<int64_t> ids;
    {
      std::unique_lock<std::mutex> lock(mover_mu_);
      mover_cv_.wait(lock, [&] { return mover_stop_ || !mover_queue_.empty(); });
      if (mover_queue_.empty()) return;  // stopping and drained
      ids.swap(mover_queue_);
    }
    MoveFinished(ids);
  }
}

void Engine::MoveFinished(const std::vector<int64_t>& ids) {
  std::vector<Job> moved;
  bool touched = false;               // a file was moved (jobs sent over HTTP have none)
  SpoolDir::Moved to{false, false};   // where to
  std::vector<std::string> replaced;  // names whose file is not the job's any more
  for (int64_t id : ids) {
    Tracked t;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(id);
      if (it == jobs_.end()) continue;
      t = it->second;
    }
    if (!t.job.spool.empty()) {
      touched = true;
      bool ok = t.job.state == JobState::kSucceeded;
      to.archived = to.archived || (ok && options_.archive);
      to.failed = to.failed || !ok;
    }
    Status st = MoveFile(&t, &replaced);
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) {
      moved.push_back(std::move(t.job));
    } else if (auto it = jobs_.find(id); it != jobs_.end()) {
      int failures = ++it->second.move_failures;
      if (failures == 1 || failures % 10 == 0) {
        spdlog::warn("job {} ({}): cannot move the file yet ({} tries), will retry: {}", id,
                     t.job.name, failures, st.ToString());
      }
    }
  }
  // One fsync per directory for the whole batch makes the moves durable. If it fails, a
  // crash may bring files back into the spool; recovery recognises them and moves them again.
  // A batch of file-less jobs moved nothing: no fsync (each costs the disk a cache flush).
  if (touched) {
    Status st = spool_.Sync(to);
    if (!st.ok()) spdlog::warn("fsync of spool directories failed: {}", st.ToString());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Job& j : moved) {
      auto tracked = jobs_.find(j.id);
      // Retried meanwhile (over the API): it is waiting again, not done.
      if (tracked == jobs_.end() || !tracked->second.move_pending) continue;
      jobs_.erase(tracked);
      ForgetApiJobLocked(j.id);
      auto it = by_name_.find(j.name);
      if (it != by_name_.end() && it->second == j.id) {
        by_name_.erase(it);
        if (came_back_.erase(j.name)) replaced.push_back(j.name);
      }
    }
    // Once the name is free: discovery skips names it tracks.
    replaced_.insert(replaced_.end(), replaced.begin(), replaced.end());
  }
  if (!replaced.empty() && watcher_) watcher_->Wake();
  if (observer_ != nullptr) {
    for (const Job& j : moved) observer_->OnFinished(j);
  }
}

Status Engine::MoveFile(Tracked* t, std::vector<std::string>* replaced) {
  const Job& j = t->job;
  if (j.spool.empty()) return Status::Ok();  // sent over HTTP: no file
  if (j.file.ino != 0) {
    // The name may hold another file by now: a producer that renamed a new submission over
    // it while this one ran. That one was never read: it stays, with its companions, and is
    // examined again as the new file it is (moving it would archive it unread). The same
    // file written in place (by its own command, say) is still the job's and goes with it:
    // taking it again would run such a command over and over.
    auto now = spool_.Stat(j.name);
    FileIdentity seen;
    if (now.ok()) seen = IdentityOf(*now);
    if (now.ok() && j.file.OtherFileThan(seen)) {
      spdlog::warn(
          "job {} ({}): another file was put under its name while its job ran; it stays in "
          "the spool and is taken as a new submission",
          j.id, j.name);
      replaced->push_back(j.name);
      return Status::Ok();
    }
    if (now.ok() && !j.file.SameFileAs(seen)) {
      spdlog::warn("job {} ({}): the file was written to while its job ran; it goes with its job",
                   j.id, j.name);
    }
  }
  Status st;
  if (j.state == JobState::kSucceeded) {
    if (options_.archive) {
      st = spool_.Archive(j.name, j.id).status();
    } else {
      st = spool_.Delete(j.name);
    }
  } else {
    auto dest = spool_.Fail(j.name, j.id, ErrorReport(j));
    st = dest.status();
    if (dest.ok()) {
      spdlog::warn("job {} failed: {} {}: [{}] {}", j.id, j.name,
                   dest->empty() ? std::string("deleted") : "moved out as failed " + *dest,
                   j.error.code, j.error.message);
    }
  }
  if (st.IsNotFound()) st = Status::Ok();  // gone already: moved before a crash, or by hand
  // Its companions go the same way (after it: a crash in between leaves them in the spool,
  // where nothing takes them, and the primary's move is redone by recovery).
  for (size_t i = 0; i < options_.companions.size(); ++i) {
    if (!st.ok()) break;
    std::string companion = SpoolDir::CompanionOf(j.name, options_.companions[i]);
    // A new companion put under the name while the job ran is not the job's: it stays, for
    // the new submission it belongs to.
    const FileIdentity ran_with = i < t->companions.size() ? t->companions[i] : FileIdentity{};
    if (ran_with.ino != 0) {
      auto now = spool_.Stat(companion);
      if (now.ok() && ran_with.OtherFileThan(IdentityOf(*now))) {
        spdlog::warn("job {} ({}): another {} was put in the spool while its job ran; it stays",
                     j.id, j.name, companion);
        continue;
      }
    }
    Status cs;
    if (j.state == JobState::kSucceeded && !options_.archive) {
      cs = spool_.Delete(companion);
    } else {
      cs = spool_.MoveCompanion(companion, j.id, j.state != JobState::kSucceeded).status();
    }
    if (!cs.ok() && !cs.IsNotFound()) st = cs;
  }
  return st;
}

std::string Engine::ErrorReport(const Job& job) const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("code");
  w.String(job.error.code.empty() ? "failed" : job.error.code.c_str());
  w.Key("message");
  w.String(ValidUtf8(job.error.message));  // may quote a file's bytes
  w.Key("attempts");
  w.Int(job.attempts);
  w.Key("max_attempts");
  w.Int(job.max_attempts);
  w.Key("first_seen");
  w.String(FormatTime(job.created_at));
  w.Key("last_tried");
  w.String(job.last_tried ? FormatTime(job.last_tried).c_str() : "");
  w.Key("job_id");
  w.Int64(job.id);
  w.Key("kind");
  w.String(job.kind);
  w.Key("origin");
  w.String(spool_.PathOf(job.name));
  if (!job.error.detail.empty()) {
    rapidjson::Document detail;
    if (ParseJson(job.error.detail, &detail).ok() && detail.IsObject()) {
      w.Key("detail");
      detail.Accept(w);
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

}  // namespace sluice
