// Writer: group commit and batch splitting.
#include "engine/writer.h"

#include <pthread.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <unordered_map>

#include "core/json.h"
#include "core/spdlog.h"

namespace sluice {

Writer::Writer(Store* store, size_t max_batch, AfterCommit after_commit, Env* env, Clock* clock,
               RetentionOptions retention, std::mutex* commit_order)
    : store_(store),
      max_batch_(max_batch),
      after_commit_(std::move(after_commit)),
      commit_order_(commit_order),
      clock_(clock),
      retention_(store, env, clock, retention) {}

Writer::~Writer() { StopAndDrain(); }

void Writer::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sluice-writer");
    Loop();
  });
}

void Writer::BeginStop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stop_deadline_) stop_deadline_ = std::chrono::steady_clock::now() + kStopGrace;
}

Status Writer::Abandoned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return abandoned_;
}

void Writer::StopAndDrain() {
  BeginStop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  room_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Writer::AddJobs(std::vector<Job> jobs, std::function<void(const Status&)> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done) {
      Waiter w{{}, std::move(done)};
      for (const Job& j : jobs) w.ids.push_back(j.id);
      waiters_.push_back(std::move(w));
    }
    for (Job& j : jobs) new_jobs_.push_back(std::move(j));
  }
  cv_.notify_one();
}

void Writer::Update(JobUpdate update) {
  size_t bytes = RowBytes(update);
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (bytes > 0) {
      room_cv_.wait(lock,
                    [&] { return stopping_ || !abandoned_.ok() || row_bytes_ < kMaxRowBytes; });
    }
    if (!abandoned_.ok()) return;  // nothing is written any more: as if the daemon had died
    row_bytes_ += bytes;
    updates_.push_back(std::move(update));
  }
  cv_.notify_one();
}

size_t Writer::RowBytes(const JobUpdate& u) {
  size_t n = 0;
  for (const ObjectRow& row : u.rows) {
    n += sizeof(ObjectRow) + row.values.size() * sizeof(Value);
    for (const Value& v : row.values) {
      if (auto* s = std::get_if<std::string>(&v)) n += s->size();
    }
  }
  return n;
}

size_t Writer::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return new_jobs_.size() + updates_.size() + in_flight_;
}

void Writer::Loop() {
  int64_t due_in = 0;  // micros until the retention is due
  while (true) {
    WriteBatch batch;
    std::vector<Waiter> waiters;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_ && new_jobs_.empty() && updates_.empty()) {
        if (cv_.wait_for(lock, std::chrono::microseconds(due_in)) == std::cv_status::timeout) {
          lock.unlock();
          due_in = retention_.MaybePrune(true);
          lock.lock();
        }
      }
      if (new_jobs_.empty() && updates_.empty()) return;  // stopping and drained
      // Every pending registration goes in: a job's result may only commit with or after it.
      size_t n = new_jobs_.size();
      batch.new_jobs.swap(new_jobs_);
      waiters.swap(waiters_);  // every pending registration is in this batch
      size_t m = std::min(updates_.size(), max_batch_);
      batch.updates.assign(std::make_move_iterator(updates_.begin()),
                           std::make_move_iterator(updates_.begin() + m));
      updates_.erase(updates_.begin(), updates_.begin() + m);
      in_flight_ = n + m;
    }
    size_t taken_bytes = 0;
    for (const JobUpdate& u : batch.updates) taken_bytes += RowBytes(u);
    MergeUpdates(&batch.updates);
    WriteBatch committed;
    dropped_.clear();
    refusals_.clear();
    Status given_up = Abandoned();
    if (given_up.ok()) {
      std::unique_lock<std::mutex> order;
      if (commit_order_ != nullptr) order = std::unique_lock<std::mutex>(*commit_order_);
      WriteSplitting(&batch, &committed);
      if (!committed.empty() || !dropped_.empty()) after_commit_(committed, dropped_);
      given_up = Abandoned();
    }
    for (Waiter& w : waiters) {
      Status st = given_up;
      for (int64_t id : w.ids) {
        auto it = refusals_.find(id);
        if (it != refusals_.end()) st = it->second;
      }
      w.done(st);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ = 0;
      row_bytes_ -= taken_bytes;
    }
    room_cv_.notify_all();
    due_in = retention_.MaybePrune(false);
  }
}

void Writer::MergeUpdates(std::vector<JobUpdate>* updates) {
  std::unordered_map<int64_t, size_t> last;
  for (size_t i = 0; i < updates->size(); ++i) last[(*updates)[i].job_id] = i;
  if (last.size() == updates->size()) return;
  std::vector<JobUpdate> kept;
  kept.reserve(last.size());
  std::unordered_map<int64_t, std::vector<Event>> earlier;  // events of the updates dropped
  for (size_t i = 0; i < updates->size(); ++i) {
    JobUpdate& u = (*updates)[i];
    if (last[u.job_id] != i) {
      auto& ev = earlier[u.job_id];
      ev.insert(ev.end(), std::make_move_iterator(u.events.begin()),
                std::make_move_iterator(u.events.end()));
      continue;
    }
    auto it = earlier.find(u.job_id);
    if (it != earlier.end()) {
      it->second.insert(it->second.end(), std::make_move_iterator(u.events.begin()),
                        std::make_move_iterator(u.events.end()));
      u.events = std::move(it->second);
    }
    kept.push_back(std::move(u));
  }
  *updates = std::move(kept);
}

void Writer::FailStateEvent(JobUpdate* u) {
  if (u->events.empty()) return;
  Event& e = u->events.back();  // the state event comes last
  rapidjson::Document d;
  if (!ParseJson(e.data, &d).ok() || !d.IsObject()) return;
  auto& a = d.GetAllocator();
  d.RemoveMember("result");
  d.RemoveMember("error");
  d["state"].SetString("failed", a);
  rapidjson::Value err(rapidjson::kObjectType);
  err.AddMember("code", rapidjson::Value(u->error.code.data(), u->error.code.size(), a), a);
  err.AddMember("message", rapidjson::Value(u->error.message.data(), u->error.message.size(), a),
                a);
  d.AddMember("error", err, a);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  d.Accept(w);
  e.type = "job.failed";
  e.data.assign(buf.GetString(), buf.GetSize());
}

void Writer::HoldLeases(std::string holder, std::vector<std::pair<std::string, int64_t>> holds,
                        std::function<void(const Status&)> lost) {
  holder_ = std::move(holder);
  holds_ = std::move(holds);
  lost_ = std::move(lost);
}

Status Writer::WriteWithRetry(WriteBatch* batch, WriteBatch* committed) {
  int delay_ms = 50;
  int failures = 0;
  bool said = false;  // a warning went out for this streak
  batch->holder = holder_;
  batch->holds = holds_;
  while (true) {
    Status st = store_->Write(batch);
    if (st.code() == Code::kCancelled && !holds_.empty() && lost_) {
      lost_(st);  // stops the daemon; should it return, nothing of this batch is written
      return st;
    }
    if (st.ok()) {
      if (failures > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        failing_.clear();
        is_failing_ = false;
      }
      if (said) spdlog::info("store writes work again after {} retries", failures);
      for (Job& j : batch->new_jobs) committed->new_jobs.push_back(std::move(j));
      committed->updates.reserve(committed->updates.size() + batch->updates.size());
      for (JobUpdate& u : batch->updates) committed->updates.push_back(std::move(u));
      for (Event& e : batch->appended) committed->appended.push_back(std::move(e));
      return st;
    }
    if (!st.IsTransient()) return st;  // the caller splits
    ++failures;
    if (GiveUp(st)) return abandoned_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      failing_ = st.message();
      is_failing_ = true;
    }
    // One line per streak; a store in an outage has said so itself (and says when it ends).
    if (!said && store_->Reachable()) {
      spdlog::warn("store write failed, retrying until it works: {}", st.ToString());
      said = true;
    } else {
      spdlog::debug("store write failed, retrying in {} ms: {}", delay_ms, st.ToString());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    delay_ms = std::min(delay_ms * 2, 5000);
  }
}

std::string Writer::Failing() const {
  if (!is_failing_) return {};  // every submission asks: no lock while writes work
  std::lock_guard<std::mutex> lock(mu_);
  return failing_;
}

bool Writer::GiveUp(const Status& st) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_deadline_ || std::chrono::steady_clock::now() < *stop_deadline_) return false;
    abandoned_ = Status::Unavailable(
        "the store could not be written for " + std::to_string(kStopGrace.count()) +
        " s while stopping (" + st.message() +
        "): given up; what was not committed is taken again at the next start");
  }
  spdlog::error("{}", abandoned_.message());
  room_cv_.notify_all();
  return true;
}

void Writer::WriteSplitting(WriteBatch* batch, WriteBatch* committed) {
  Status st = WriteWithRetry(batch, committed);
  if (st.ok()) return;
  if (!Abandoned().ok()) return;  // given up at a stop: nothing more is written
  // Not this batch's fault: the daemon lost its lease and stops (lost_ ran); nothing more of
  // it is written, and nothing is failed for it.
  if (st.code() == Code::kCancelled && !holds_.empty()) return;
  size_t items = batch->new_jobs.size() + batch->updates.size();
  if (items > 1) {
    WriteBatch first, second;
    if (!batch->new_jobs.empty() && !batch->updates.empty()) {
      first.new_jobs = std::move(batch->new_jobs);
      second.updates = std::move(batch->updates);
    } else if (!batch->new_jobs.empty()) {
      size_t half = batch->new_jobs.size() / 2;
      first.new_jobs.assign(std::make_move_iterator(batch->new_jobs.begin()),
                            std::make_move_iterator(batch->new_jobs.begin() + half));
      second.new_jobs.assign(std::make_move_iterator(batch->new_jobs.begin() + half),
                             std::make_move_iterator(batch->new_jobs.end()));
    } else {
      size_t half = batch->updates.size() / 2;
      first.updates.assign(std::make_move_iterator(batch->updates.begin()),
                           std::make_move_iterator(batch->updates.begin() + half));
      second.updates.assign(std::make_move_iterator(batch->updates.begin() + half),
                            std::make_move_iterator(batch->updates.end()));
    }
    WriteSplitting(&first, committed);
    WriteSplitting(&second, committed);
    return;
  }
  if (batch->updates.size() == 1) {
    // The one bad job fails alone, with the store's reason; its rows are dropped.
    JobUpdate& u = batch->updates.front();
    spdlog::error("job {}: the store rejected its result: {}", u.job_id, st.ToString());
    u.rows.clear();
    u.state = JobState::kFailed;
    u.error =
        JobError{"store_rejected", "the database rejected this job's data: " + st.message(), ""};
    u.result.clear();
    FailStateEvent(&u);
    Status again = WriteWithRetry(batch, committed);
    if (!again.ok()) {
      spdlog::error("job {}: cannot record its failure: {}", u.job_id, again.ToString());
    }
    return;
  }
  for (Job& j : batch->new_jobs) {
    if (st.code() != Code::kAlreadyExists) {
      spdlog::error("cannot register {}: {}", j.name, st.ToString());
    }
    refusals_[j.id] = st;
    dropped_.push_back(std::move(j));
  }
}

}  // namespace sluice
