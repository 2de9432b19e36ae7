// Writer: group commit and batch splitting.
#include "engine/writer.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <unordered_map>

namespace sluice {

Writer::Writer(Store* store, size_t max_batch, AfterCommit after_commit)
    : store_(store), max_batch_(max_batch), after_commit_(std::move(after_commit)) {}

Writer::~Writer() { StopAndDrain(); }

void Writer::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sluice-writer");
    Loop();
  });
}

void Writer::StopAndDrain() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    updates_.push_back(std::move(update));
  }
  cv_.notify_one();
}

size_t Writer::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return new_jobs_.size() + updates_.size() + in_flight_;
}

void Writer::Loop() {
  while (true) {
    WriteBatch batch;
    std::vector<Waiter> waiters;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !new_jobs_.empty() || !updates_.empty(); });
      if (new_jobs_.empty() && updates_.empty()) return;  // stopping and drained
      // Every pending registration goes in: a job's result may only commit with or after it.
      size_t n = new_jobs_.size();
      batch.new_jobs.assign(std::make_move_iterator(new_jobs_.begin()),
                            std::make_move_iterator(new_jobs_.begin() + n));
      new_jobs_.erase(new_jobs_.begin(), new_jobs_.begin() + n);
      waiters.swap(waiters_);  // every pending registration is in this batch
      size_t m = std::min(updates_.size(), max_batch_);
      batch.updates.assign(std::make_move_iterator(updates_.begin()),
                           std::make_move_iterator(updates_.begin() + m));
      updates_.erase(updates_.begin(), updates_.begin() + m);
      in_flight_ = n + m;
    }
    // A job's claim and its result in the same batch: only the result needs writing.
    std::unordered_map<int64_t, size_t> last;
    for (size_t i = 0; i < batch.updates.size(); ++i) last[batch.updates[i].job_id] = i;
    if (last.size() != batch.updates.size()) {
      std::vector<JobUpdate> kept;
      kept.reserve(last.size());
      for (size_t i = 0; i < batch.updates.size(); ++i) {
        if (last[batch.updates[i].job_id] == i) kept.push_back(std::move(batch.updates[i]));
      }
      batch.updates = std::move(kept);
    }
    WriteBatch committed;
    dropped_.clear();
    refusals_.clear();
    WriteSplitting(&batch, &committed);
    if (!committed.empty() || !dropped_.empty()) after_commit_(committed, dropped_);
    for (Waiter& w : waiters) {
      Status st;
      for (int64_t id : w.ids) {
        auto it = refusals_.find(id);
        if (it != refusals_.end()) st = it->second;
      }
      w.done(st);
    }
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_ = 0;
  }
}

Status Writer::WriteWithRetry(WriteBatch* batch, WriteBatch* committed) {
  int delay_ms = 50;
  while (true) {
    Status st = store_->Write(batch);
    if (st.ok()) {
      for (Job& j : batch->new_jobs) committed->new_jobs.push_back(std::move(j));
      for (JobUpdate& u : batch->updates) committed->updates.push_back(std::move(u));
      return st;
    }
    if (!st.IsTransient()) return st;  // the caller splits
    spdlog::warn("store write failed, retrying in {} ms: {}", delay_ms, st.ToString());
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    delay_ms = std::min(delay_ms * 2, 5000);
  }
}

void Writer::WriteSplitting(WriteBatch* batch, WriteBatch* committed) {
  Status st = WriteWithRetry(batch, committed);
  if (st.ok()) return;
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
