// SpoolDir moves.
#include "spool/spool_dir.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace sluice {

SpoolDir::SpoolDir(Env* env, std::string root, SaveDirs save)
    : env_(env), root_(std::move(root)), save_(std::move(save)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Status SpoolDir::Prepare() {
  SLUICE_RETURN_IF_ERROR(env_->CreateDirs(root_));
  SLUICE_RETURN_IF_ERROR(env_->CreateDirs(ArchiveDir()));
  SLUICE_RETURN_IF_ERROR(env_->CreateDirs(DeferredDir()));
  return env_->CreateDirs(FailedDir());
}

bool SpoolDir::IsCandidateName(std::string_view name) {
  constexpr std::string_view kExt = ".json";
  if (name.empty() || name.front() == '.') return false;
  if (name.size() <= kExt.size()) return false;
  return name.substr(name.size() - kExt.size()) == kExt;
}

std::string SpoolDir::SuffixedName(std::string_view name, int64_t job_id) {
  std::string stem(name), ext;
  if (auto dot = stem.rfind('.'); dot != std::string::npos && dot > 0) {
    ext = stem.substr(dot);
    stem = stem.substr(0, dot);
  }
  return stem + "." + std::to_string(job_id) + ext;
}

Result<std::optional<std::string>> SpoolDir::Destination(bool failed) {
  const std::optional<std::string>& to = failed ? save_.failed : save_.successful;
  if (!to) return std::optional<std::string>(failed ? FailedDir() : ArchiveDir());
  if (to->empty()) return std::optional<std::string>();
  time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  char day[40];
  std::snprintf(day, sizeof(day), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  std::string dir = JoinPath(*to, day);
  std::lock_guard<std::mutex> lock(mu_);
  if (std::find(touched_.begin(), touched_.end(), dir) == touched_.end()) {
    SLUICE_RETURN_IF_ERROR(env_->CreateDirs(dir));
    touched_.push_back(dir);
  }
  return std::optional<std::string>(dir);
}

Result<std::string> SpoolDir::MoveInto(std::string_view name, const std::string& dir,
                                       int64_t job_id) {
  // Try the plain name first (one path lookup in the common case), the job id on a clash.
  std::string dest(name);
  Status st = env_->RenameNoReplace(PathOf(name), JoinPath(dir, dest));
  if (st.code() == Code::kAlreadyExists) {
    dest = SuffixedName(name, job_id);
    st = env_->RenameNoReplace(PathOf(name), JoinPath(dir, dest));
  }
  if (!st.ok()) return st;
  return dest;
}

Result<std::string> SpoolDir::Archive(std::string_view name, int64_t job_id) {
  auto dir = Destination(false);
  if (!dir.ok()) return dir.status();
  if (!*dir) {
    SLUICE_RETURN_IF_ERROR(Delete(name));
    return std::string();
  }
  return MoveInto(name, **dir, job_id);
}

Result<std::string> SpoolDir::Fail(std::string_view name, int64_t job_id, std::string_view report) {
  auto dir = Destination(true);
  if (!dir.ok()) return dir.status();
  if (!*dir) {
    SLUICE_RETURN_IF_ERROR(Delete(name));
    return std::string();
  }
  std::string dest(name);
  auto taken = env_->Stat(JoinPath(**dir, dest));
  if (taken.ok()) dest = SuffixedName(name, job_id);
  // The reason first, durably: a file in failed/ must never be without its reason.
  Status st = env_->WriteFileAtomic(JoinPath(**dir, dest + ".error.json"), report);
  if (!st.ok()) return st;
  st = env_->RenameNoReplace(PathOf(name), JoinPath(**dir, dest));
  if (!st.ok()) return st;
  return dest;
}

Status SpoolDir::Delete(std::string_view name) { return env_->RemoveFile(PathOf(name)); }

std::string SpoolDir::CompanionOf(std::string_view primary, std::string_view suffix) {
  std::string stem(primary);
  if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".json") == 0)
    stem.resize(stem.size() - 5);
  return stem + std::string(suffix);
}

Result<std::string> SpoolDir::MoveCompanion(std::string_view name, int64_t job_id, bool failed) {
  auto dir = Destination(failed);
  if (!dir.ok()) return dir.status();
  if (!*dir) {
    SLUICE_RETURN_IF_ERROR(Delete(name));
    return std::string();
  }
  return MoveInto(name, **dir, job_id);
}

Status SpoolDir::Sync() {
  SLUICE_RETURN_IF_ERROR(env_->SyncDir(root_));
  if (!save_.successful) SLUICE_RETURN_IF_ERROR(env_->SyncDir(ArchiveDir()));
  if (!save_.failed) SLUICE_RETURN_IF_ERROR(env_->SyncDir(FailedDir()));
  std::vector<std::string> dirs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Yesterday's folder needs no more syncs once today's is in use.
    if (touched_.size() > 2) touched_.erase(touched_.begin(), touched_.end() - 2);
    dirs = touched_;
  }
  for (const std::string& dir : dirs) SLUICE_RETURN_IF_ERROR(env_->SyncDir(dir));
  return Status::Ok();
}

Status SpoolDir::Restore(std::string_view failed_name, std::string_view name) {
  std::string from =
      JoinPath(save_.failed && !save_.failed->empty() ? *save_.failed : FailedDir(), failed_name);
  SLUICE_RETURN_IF_ERROR(env_->Touch(from));
  SLUICE_RETURN_IF_ERROR(env_->RenameNoReplace(from, PathOf(name)));
  (void)env_->RemoveFile(from + ".error.json");
  return Status::Ok();
}

Result<std::string> SpoolDir::FailedNameOf(std::string_view name, int64_t job_id) {
  std::vector<std::string> folders = {""};
  std::string base = FailedDir();
  if (save_.failed && !save_.failed->empty()) {
    base = *save_.failed;
    folders.clear();
    auto entries = env_->ListDir(base);
    if (entries.ok()) {
      for (const DirEntry& e : *entries) {
        if (e.type == FileType::kDirectory) folders.push_back(e.name + "/");
      }
    }
    std::sort(folders.rbegin(), folders.rend());  // newest day first
  }
  for (const std::string& folder : folders) {
    for (const std::string& n : {SuffixedName(name, job_id), std::string(name)}) {
      if (env_->Stat(JoinPath(base, folder + n)).ok()) return folder + n;
    }
  }
  return Status::NotFound("the file of job " + std::to_string(job_id) + " (" + std::string(name) +
                          ") is not in " + FailedDir() + " any more");
}

}  // namespace sluice
