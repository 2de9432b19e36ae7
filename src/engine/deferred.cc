// Engine: deferred files (Socorro's deferred storage) and priority requests by file name.
#include "core/spdlog.h"
#include "engine/engine.h"

namespace sluice {

Result<Job> Engine::Promote(const std::string& name, bool prioritise) {
  auto job = TakeFromDeferred(name, prioritise);
  if (!job.ok()) return job;
  (void)spool_.Sync();
  if (watcher_) watcher_->Wake();
  spdlog::info("{} promoted from deferred/{}", name, prioritise ? " at top priority" : "");
  return job;
}

Result<Job> Engine::TakeFromDeferred(const std::string& name, bool prioritise) {
  if (!SpoolDir::IsCandidateName(name) || name.find('/') != std::string::npos) {
    return Status::InvalidArgument("'" + name + "' is not a spool file name");
  }
  Job job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (by_name_.count(name)) {
      return Status::AlreadyExists("a file named " + name + " is in the spool already");
    }
    Status st = spool_.Undefer(name);
    if (st.IsNotFound()) return Status::NotFound("no file " + name + " in deferred/");
    if (!st.ok()) return st;
    auto it = deferred_.find(name);
    if (it == deferred_.end()) {
      // Not registered yet: discovery takes it from the spool like any file landing.
      if (prioritise) urgent_.insert(name);
      job.name = name;
      job.state = JobState::kQueued;
      job.priority = prioritise ? kPrioritised : 0;
    } else {
      Job& j = jobs_[it->second.id].job;
      j = DeferredJob(name, it->second);
      j.state = JobState::kQueued;
      if (prioritise) j.priority = std::max(j.priority, kPrioritised);
      j.run_at = 0;
      by_name_[name] = j.id;
      deferred_.erase(it);
      job = j;
      Record(job, {}, {"promoted from deferred/"});  // before a worker can take it
      broker_->Push(Ticket{j.id, j.priority, j.file.mtime_ns, 0});
    }
  }
  return job;
}

Job Engine::DeferredJob(const std::string& name, const Deferred& d) const {
  Job j;
  j.id = d.id;
  j.queue = d.queue;
  j.kind = std::string(handler_->kind());
  j.spool = spool_.root();
  j.name = name;
  j.file = d.file;
  j.state = JobState::kDeferred;
  j.max_attempts = d.max_attempts;
  j.priority = d.priority;
  j.created_at = d.created_at;
  return j;
}

std::vector<std::string> Engine::PromoteAll() {
  std::vector<std::string> promoted;
  auto entries = spool_.ListDeferred();
  if (!entries.ok()) return promoted;
  for (const DirEntry& e : *entries) {
    if (!SpoolDir::IsCandidateName(e.name)) continue;
    if (TakeFromDeferred(e.name, false).ok()) promoted.push_back(e.name);
  }
  if (promoted.empty()) return promoted;
  (void)spool_.Sync();  // once for all: an fsync per file took 4 s for 5,000 files
  if (watcher_) watcher_->Wake();
  spdlog::info("{} files promoted from deferred/", promoted.size());
  return promoted;
}

Result<Engine::NamePriority> Engine::PrioritizeName(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) {
    return Status::InvalidArgument("'" + name + "' is not a spool file name");
  }
  int64_t id = 0;
  bool deferred = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(name);
    if (it != by_name_.end()) id = it->second;
    deferred = deferred_.count(name) > 0;
  }
  if (id != 0) {
    auto job = Prioritize(id);
    if (!job.ok()) return job.status();
    std::string action = job->state == JobState::kRunning ? "running" : "prioritised";
    return NamePriority{std::move(*job), action};
  }
  if (deferred || spool_.StatDeferred(name).ok()) {
    auto job = Promote(name, true);
    if (!job.ok()) return job.status();
    return NamePriority{std::move(*job), "promoted"};
  }
  auto info = spool_.Stat(name);
  if (info.ok() && info->type == FileType::kRegular && SpoolDir::IsCandidateName(name)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      urgent_.insert(name);
    }
    if (watcher_) watcher_->Wake();
    Job job;
    job.name = name;
    job.spool = spool_.root();
    job.state = JobState::kQueued;
    job.priority = kPrioritised;
    return NamePriority{std::move(job), "registering"};
  }
  return Status::NotFound("no job, spool file or deferred file named " + name);
}

}  // namespace sluice
