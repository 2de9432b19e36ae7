// SpoolDir moves.
#include "spool/spool_dir.h"

namespace sluice {

SpoolDir::SpoolDir(Env* env, std::string root) : env_(env), root_(std::move(root)) {
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

Result<std::string> SpoolDir::Archive(std::string_view name, int64_t job_id) {
  // Try the plain name first (one path lookup in the common case), the job id on a clash.
  std::string dest(name);
  Status st = env_->RenameNoReplace(PathOf(name), JoinPath(ArchiveDir(), dest));
  if (st.code() == Code::kAlreadyExists) {
    dest = SuffixedName(name, job_id);
    st = env_->RenameNoReplace(PathOf(name), JoinPath(ArchiveDir(), dest));
  }
  if (!st.ok()) return st;
  return dest;
}

Result<std::string> SpoolDir::Fail(std::string_view name, int64_t job_id, std::string_view report) {
  std::string dest(name);
  auto taken = env_->Stat(JoinPath(FailedDir(), dest));
  if (taken.ok()) dest = SuffixedName(name, job_id);
  // The reason first, durably: a file in failed/ must never be without its reason.
  Status st = env_->WriteFileAtomic(JoinPath(FailedDir(), dest + ".error.json"), report);
  if (!st.ok()) return st;
  st = env_->RenameNoReplace(PathOf(name), JoinPath(FailedDir(), dest));
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
  std::string dir = failed ? FailedDir() : ArchiveDir();
  std::string dest(name);
  Status st = env_->RenameNoReplace(PathOf(name), JoinPath(dir, dest));
  if (st.code() == Code::kAlreadyExists) {
    dest = SuffixedName(name, job_id);
    st = env_->RenameNoReplace(PathOf(name), JoinPath(dir, dest));
  }
  if (!st.ok()) return st;
  return dest;
}

Status SpoolDir::Sync() {
  SLUICE_RETURN_IF_ERROR(env_->SyncDir(root_));
  SLUICE_RETURN_IF_ERROR(env_->SyncDir(ArchiveDir()));
  return env_->SyncDir(FailedDir());
}

Status SpoolDir::Restore(std::string_view failed_name, std::string_view name) {
  std::string from = JoinPath(FailedDir(), failed_name);
  SLUICE_RETURN_IF_ERROR(env_->Touch(from));
  SLUICE_RETURN_IF_ERROR(env_->RenameNoReplace(from, PathOf(name)));
  (void)env_->RemoveFile(from + ".error.json");
  return Status::Ok();
}

Result<std::string> SpoolDir::FailedNameOf(std::string_view name, int64_t job_id) {
  for (const std::string& n : {SuffixedName(name, job_id), std::string(name)}) {
    if (env_->Stat(JoinPath(FailedDir(), n)).ok()) return n;
  }
  return Status::NotFound("the file of job " + std::to_string(job_id) + " (" + std::string(name) +
                          ") is not in " + FailedDir() + " any more");
}

}  // namespace sluice
