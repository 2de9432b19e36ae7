// Engine::Submit: jobs sent over HTTP. Unlike a spool file, such a job exists only in the
// store, so its registration is durable before the caller hears "created", and a worker gets
// it only after that commit.
#include <future>
#include <memory>

#include "engine/engine.h"

namespace sluice {

Result<SubmitResult> Engine::Submit(Job job) {
  if (job.kind != handler_->kind()) {
    return Status::InvalidArgument("unknown kind '" + job.kind + "' (this daemon runs '" +
                                   std::string(handler_->kind()) + "' jobs)");
  }
  if (stop_) return Status::Unavailable("the daemon is stopping");
  if (!job.idempotency_key.empty()) {
    auto earlier = store_->FindJobByIdempotencyKey(job.idempotency_key);
    if (!earlier.ok()) return earlier.status();
    if (earlier->has_value()) return SubmitResult{std::move(**earlier), false};
  }
  job.spool.clear();
  job.name.clear();
  job.state = JobState::kQueued;
  job.attempts = 0;
  job.created_at = clock_->NowMicros();
  if (job.max_attempts <= 0) job.max_attempts = options_.max_attempts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job.id = next_id_++;
    jobs_[job.id] = Tracked{job};
    api_ids_.insert(job.id);
  }
  auto committed = std::make_shared<std::promise<Status>>();
  std::future<Status> done = committed->get_future();
  writer_->AddJobs({job}, [committed](const Status& st) { committed->set_value(st); });
  Status st = done.wait_for(std::chrono::seconds(60)) == std::future_status::ready
                  ? done.get()
                  : Status::Unavailable("the store did not commit the job within 60 s");
  if (!st.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.erase(job.id);
      api_ids_.erase(job.id);
    }
    if (st.code() == Code::kAlreadyExists && !job.idempotency_key.empty()) {
      // Another request with the same key won the race.
      auto earlier = store_->FindJobByIdempotencyKey(job.idempotency_key);
      if (earlier.ok() && earlier->has_value()) return SubmitResult{std::move(**earlier), false};
    }
    return st;
  }
  broker_->Push(Ticket{job.id, job.priority, job.created_at * 1000, job.run_at});
  return SubmitResult{std::move(job), true};
}

}  // namespace sluice
