// Engine::SubmitAsync: jobs sent over HTTP. Unlike a spool file, such a job exists only in
// the store, so its registration is durable before the caller hears "created", and a worker
// gets it only after that commit. Nothing blocks while the commit happens: the answer comes
// from the writer's commit callback, so many submissions share one group commit.
#include <future>
#include <memory>

#include "engine/engine.h"

namespace sluice {

void Engine::SubmitAsync(Job job, SubmitCallback done) {
  // In a cluster any worker of any process may run it: the daemon decided the kind is one.
  if (job.kind != handler_->kind() && options_.api_broker == nullptr) {
    return done(Status::InvalidArgument("unknown kind '" + job.kind + "' (this daemon runs '" +
                                        std::string(handler_->kind()) + "' jobs)"));
  }
  if (stop_) return done(Status::Unavailable("the daemon is stopping"));
  if (Status writable = StoreWritable(); !writable.ok()) return done(writable);
  if (!job.idempotency_key.empty()) {
    auto earlier = store_->FindJobByIdempotencyKey(job.idempotency_key);
    if (!earlier.ok()) return done(earlier.status());
    if (earlier->has_value()) return done(SubmitResult{std::move(**earlier), false});
  }
  if (options_.api_broker == nullptr) {
    // Held in memory until it ends: a flood of submissions (or of jobs scheduled far ahead,
    // each with a payload of up to --max-body-bytes) must not take all the memory there is.
    if (job.payload.size() > options_.max_api_bytes) {  // would never fit: not worth a retry
      return done(Status::InvalidArgument("the payload's " + std::to_string(job.payload.size()) +
                                          " bytes are more than --max-api-bytes (" +
                                          std::to_string(options_.max_api_bytes) + ")"));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (api_jobs_.size() >= options_.max_api_jobs) {
      return done(Status::Unavailable(
          std::to_string(api_jobs_.size()) +
          " jobs sent over HTTP are queued or running here (--max-api-jobs); try again later"));
    }
    if (api_bytes_ + job.payload.size() > options_.max_api_bytes) {
      return done(Status::Unavailable(
          "the payloads of the jobs sent over HTTP and queued or running here would pass " +
          std::to_string(options_.max_api_bytes) + " bytes (--max-api-bytes); try again later"));
    }
  }
  job.spool.clear();
  job.name.clear();
  job.lease_owner = options_.owner;  // this daemon runs it (and recovers it)
  job.state = JobState::kQueued;
  job.attempts = 0;
  job.created_at = clock_->NowMicros();
  if (job.max_attempts <= 0) job.max_attempts = options_.max_attempts;
  auto id = ids_->Next();
  if (!id.ok()) return done(id.status());
  job.id = *id;
  if (options_.api_broker == nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_[job.id] = Tracked{job};
    TrackApiJobLocked(job);
  }
  // Runs on the writer thread once the registration committed or was refused.
  auto committed = [this, job, done = std::move(done)](const Status& st) {
    if (st.ok()) {
      if (options_.api_broker != nullptr) {
        options_.api_broker->Push(Ticket{job.id, job.priority, job.created_at * 1000, job.run_at,
                                         BrokerQueue(job.queue, job.kind)});
      } else {
        broker_->Push(Ticket{job.id, job.priority, job.created_at * 1000, job.run_at});
      }
      return done(SubmitResult{job, true});
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.erase(job.id);
      ForgetApiJobLocked(job.id);
    }
    if (st.code() == Code::kAlreadyExists && !job.idempotency_key.empty()) {
      // Another request with the same key won the race.
      auto earlier = store_->FindJobByIdempotencyKey(job.idempotency_key);
      if (earlier.ok() && earlier->has_value()) {
        return done(SubmitResult{std::move(**earlier), false});
      }
    }
    done(st);
  };
  writer_->AddJobs({job}, std::move(committed));
}

void Engine::TrackApiJobLocked(const Job& j) {
  auto [it, added] = api_jobs_.emplace(j.id, j.payload.size());
  if (added) api_bytes_ += it->second;
}

void Engine::ForgetApiJobLocked(int64_t id) {
  auto it = api_jobs_.find(id);
  if (it == api_jobs_.end()) return;
  api_bytes_ -= it->second;
  api_jobs_.erase(it);
}

Result<SubmitResult> Engine::Submit(Job job) {
  auto result = std::make_shared<std::promise<Result<SubmitResult>>>();
  std::future<Result<SubmitResult>> done = result->get_future();
  SubmitAsync(std::move(job),
              [result](Result<SubmitResult> r) { result->set_value(std::move(r)); });
  if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    return Status::Unavailable("the store did not commit the job within 60 s");
  }
  return done.get();
}

}  // namespace sluice
