// SpoolDir moves, between directories held open.
#include "spool/spool_dir.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/json.h"
#include "core/spdlog.h"
#include "core/text.h"

namespace sluice {
namespace {

// "20261123/x.json" -> {"20261123", "x.json"}; a plain name has no folder. InvalidArgument
// for anything else (".." or more than one folder).
Result<std::pair<std::string, std::string>> SplitDated(std::string_view name) {
  size_t slash = name.find('/');
  if (slash == std::string_view::npos) {
    if (name.empty() || name == "." || name == "..") {
      return Status::InvalidArgument("'" + std::string(name) + "' is not a name in failed/");
    }
    return std::make_pair(std::string(), std::string(name));
  }
  std::string folder(name.substr(0, slash)), file(name.substr(slash + 1));
  if (folder.empty() || folder == "." || folder == ".." || file.empty() ||
      file.find('/') != std::string::npos || file == "." || file == "..") {
    return Status::InvalidArgument("'" + std::string(name) + "' is not a name in failed/");
  }
  return std::make_pair(folder, file);
}

}  // namespace

SpoolDir::SpoolDir(Env* env, std::string root, SaveDirs save)
    : env_(env),
      folders_(env, std::move(root), {"archive", "failed", "deferred"}),
      save_(std::move(save)) {}

Status SpoolDir::Prepare() {
  Status st = folders_.Open(false);
  if (st.IsNotFound()) return MissingPath(env_, "the spool directory", root());
  SLUICE_RETURN_IF_ERROR(st);
  // Finished files are moved by rename, which cannot cross filesystems: said at the start,
  // not by every file's move failing afterwards.
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  for (bool failed : {false, true}) {
    const std::optional<std::string>& to = failed ? save_.failed : save_.successful;
    if (!to || to->empty()) continue;
    auto dest = Destination(failed);
    if (!dest.ok()) return dest.status();
    if ((*dest)->dev() != h->root->dev()) {
      return Status::InvalidArgument(
          std::string(failed ? "--save-failed-to " : "--save-successful-to ") + *to +
          " is on another filesystem than the spool " + root() +
          ": finished files are moved there by rename; give a directory on the spool's "
          "filesystem");
    }
  }
  return Status::Ok();
}

Status SpoolDir::Check() {
  SLUICE_RETURN_IF_ERROR(folders_.Check());
  std::lock_guard<std::mutex> lock(mu_);
  dated_.clear();  // opened again when next used
  return Status::Ok();
}

bool SpoolDir::IsCandidateName(std::string_view name) {
  constexpr std::string_view kExt = ".json";
  if (name.empty() || name.front() == '.') return false;
  if (name.size() <= kExt.size()) return false;
  return name.substr(name.size() - kExt.size()) == kExt;
}

namespace {

constexpr size_t kMaxFileName = 255;

// `stem` + `tail`, with `stem` cut (never inside a UTF-8 sequence) and given a digest of the
// whole name when the two would not fit in a file name.
std::string Fit(std::string_view stem, std::string_view tail) {
  if (stem.size() + tail.size() <= kMaxFileName) return std::string(stem) + std::string(tail);
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the whole name
  for (unsigned char c : stem) h = (h ^ c) * 1099511628211ull;
  char digest[20];
  std::snprintf(digest, sizeof(digest), "~%016llx", static_cast<unsigned long long>(h));
  size_t keep = kMaxFileName - tail.size() - std::strlen(digest);
  while (keep > 0 && (static_cast<unsigned char>(stem[keep]) & 0xC0) == 0x80) --keep;
  return std::string(stem.substr(0, keep)) + digest + std::string(tail);
}

}  // namespace

std::string SpoolDir::SuffixedName(std::string_view name, int64_t job_id) {
  std::string stem(name), ext;
  if (auto dot = stem.rfind('.'); dot != std::string::npos && dot > 0) {
    ext = stem.substr(dot);
    stem = stem.substr(0, dot);
  }
  return Fit(stem, "." + std::to_string(job_id) + ext);
}

std::string SpoolDir::ReportNameOf(std::string_view name) { return Fit(name, ".error.json"); }

Status SpoolDir::ListInBatches(size_t batch,
                               const std::function<bool(std::vector<DirEntry>*)>& each) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return env_->ListDirAtInBatches(*h->root, batch, each);
}

Result<std::vector<DirEntry>> SpoolDir::ListDeferred() {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return env_->ListDirAt(*h->sub[kDeferred]);
}

Result<FileInfo> SpoolDir::Stat(std::string_view name) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return env_->StatAt(*h->root, name);
}

Result<FileInfo> SpoolDir::StatDeferred(std::string_view name) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return env_->StatAt(*h->sub[kDeferred], name);
}

Result<SpoolDir::DirPtr> SpoolDir::Destination(bool failed) {
  const std::optional<std::string>& to = failed ? save_.failed : save_.successful;
  if (!to) {
    auto h = folders_.Get();
    if (!h.ok()) return h.status();
    return h->sub[failed ? kFailed : kArchive];
  }
  if (to->empty()) return DirPtr();
  time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  char day[40];
  std::snprintf(day, sizeof(day), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  std::string path = JoinPath(*to, day);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [p, dir] : dated_) {
    if (p == path) return dir;
  }
  // The operator's directory (created when missing), then the day's folder in it.
  SLUICE_RETURN_IF_ERROR(env_->CreateDirs(*to));
  auto base = env_->OpenDir(*to);
  if (!base.ok()) return base.status();
  auto opened = env_->OpenSubdir(*base, day, true);
  if (!opened.ok()) return opened.status();
  auto dir = std::make_shared<const Dir>(std::move(*opened));
  dated_.emplace_back(path, dir);
  if (dated_.size() > 4) dated_.erase(dated_.begin());  // yesterday's need no more syncs
  return DirPtr(dir);
}

Result<std::string> SpoolDir::MoveOut(
    std::string_view name, bool failed,
    const std::function<Result<std::string>(const Dir& root, const Dir& dest)>& move) {
  for (int round = 0;; ++round) {
    auto h = folders_.Get();
    if (!h.ok()) return h.status();
    auto dest = Destination(failed);
    if (!dest.ok()) return dest.status();
    if (!*dest) {
      SLUICE_RETURN_IF_ERROR(env_->RemoveAt(*h->root, name));
      return std::string();
    }
    auto moved = move(*h->root, **dest);
    if (moved.ok() || !moved.status().IsNotFound()) return moved;
    // Nothing found: the file is gone (moved before a crash, or by hand), or the folder it
    // was going to was deleted. Only the first is "not found".
    if (env_->StatAt(*h->root, name).status().IsNotFound()) return moved;
    if (round > 0) {
      return Status::Unavailable(moved.status().message() + " (the folder it goes to is missing)");
    }
    Status checked = Check();
    if (!checked.ok()) return checked;
  }
}

Result<std::string> SpoolDir::MoveInto(const Dir& root, std::string_view name, const Dir& dest,
                                       int64_t job_id) {
  // Try the plain name first (one path lookup in the common case), the job id on a clash.
  std::string to(name);
  Status st = env_->RenameAt(root, name, dest, to, false);
  if (st.code() == Code::kAlreadyExists) {
    to = SuffixedName(name, job_id);
    st = env_->RenameAt(root, name, dest, to, false);
  }
  if (!st.ok()) return st;
  return to;
}

Result<std::string> SpoolDir::Archive(std::string_view name, int64_t job_id) {
  return MoveOut(name, false, [&](const Dir& root, const Dir& dest) {
    return MoveInto(root, name, dest, job_id);
  });
}

Result<std::string> SpoolDir::Fail(std::string_view name, int64_t job_id, std::string_view report) {
  return MoveOut(name, true, [&](const Dir& root, const Dir& dest) -> Result<std::string> {
    std::string to(name);
    if (env_->StatAt(dest, to).ok()) to = SuffixedName(name, job_id);
    // The reason first, durably: a file in failed/ must never be without its reason.
    SLUICE_RETURN_IF_ERROR(env_->WriteFileAtomicAt(dest, ReportNameOf(to), report));
    SLUICE_RETURN_IF_ERROR(env_->RenameAt(root, name, dest, to, false));
    return to;
  });
}

Status SpoolDir::Delete(std::string_view name) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return env_->RemoveAt(*h->root, name);
}

Status SpoolDir::Undefer(std::string_view name) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return env_->RenameAt(*h->sub[kDeferred], name, *h->root, name, false);
}

std::string SpoolDir::CompanionOf(std::string_view primary, std::string_view suffix) {
  std::string stem(primary);
  if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".json") == 0)
    stem.resize(stem.size() - 5);
  return stem + std::string(suffix);
}

Status SpoolDir::CheckCompanionSuffix(std::string_view suffix) {
  auto refuse = [&](const char* why) {
    return Status::InvalidArgument("--companions: the suffix \"" + PrintableLine(suffix) + "\" " +
                                   why +
                                   " (a companion is the job's name with .json replaced "
                                   "by the suffix, as .dump: x.json and x.dump)");
  };
  if (suffix.empty()) return refuse("is empty");
  if (suffix.size() > kMaxFileName) return refuse("is longer than a file name may be");
  for (unsigned char c : suffix) {
    if (c == '/') return refuse("holds a '/': a companion is a file beside its job, in the spool");
    if (c < 0x20 || c == 0x7f) return refuse("holds a control character");
  }
  if (IsCandidateName("x" + std::string(suffix))) {
    return refuse("ends in .json: each companion would also be taken for a job");
  }
  return Status::Ok();
}

Result<std::string> SpoolDir::MoveCompanion(std::string_view name, int64_t job_id, bool failed) {
  return MoveOut(name, failed, [&](const Dir& root, const Dir& dest) {
    return MoveInto(root, name, dest, job_id);
  });
}

Status SpoolDir::Sync() { return Sync(Moved{}); }

Status SpoolDir::Sync(Moved moved) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  SLUICE_RETURN_IF_ERROR(env_->SyncDir(*h->root));
  if (moved.archived && !save_.successful) SLUICE_RETURN_IF_ERROR(env_->SyncDir(*h->sub[kArchive]));
  if (moved.failed && !save_.failed) SLUICE_RETURN_IF_ERROR(env_->SyncDir(*h->sub[kFailed]));
  if (!(moved.archived && save_.successful) && !(moved.failed && save_.failed)) {
    return Status::Ok();
  }
  std::vector<DirPtr> dated;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [path, dir] : dated_) dated.push_back(dir);
  }
  for (const DirPtr& dir : dated) SLUICE_RETURN_IF_ERROR(env_->SyncDir(*dir));
  return Status::Ok();
}

Status SpoolDir::Restore(std::string_view failed_name, std::string_view name) {
  auto parts = SplitDated(failed_name);
  if (!parts.ok()) return parts.status();
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  DirPtr base = h->sub[kFailed];
  if (save_.failed && !save_.failed->empty()) {
    auto opened = env_->OpenDir(*save_.failed);
    if (!opened.ok()) return opened.status();
    base = std::make_shared<const Dir>(std::move(*opened));
  }
  DirPtr from = base;
  if (!parts->first.empty()) {
    auto sub = env_->OpenSubdir(*base, parts->first, false);
    if (!sub.ok()) return sub.status();
    from = std::make_shared<const Dir>(std::move(*sub));
  }
  const std::string& file = parts->second;
  // Only a file goes back: never a dated folder, nor a link.
  auto info = env_->StatAt(*from, file);
  if (!info.ok()) return info.status();
  if (info->type != FileType::kRegular) {
    return Status::InvalidArgument("'" + std::string(failed_name) + "' is not a file in failed/");
  }
  SLUICE_RETURN_IF_ERROR(env_->SetModifiedTimeAt(*from, file, Env::kNowMicros));
  SLUICE_RETURN_IF_ERROR(env_->RenameAt(*from, file, *h->root, name, false));
  (void)env_->RemoveAt(*from, ReportNameOf(file));
  return Status::Ok();
}

Result<std::string> SpoolDir::FailedNameOf(std::string_view name, int64_t job_id) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  std::vector<std::pair<std::string, DirPtr>> folders = {{"", h->sub[kFailed]}};
  if (save_.failed && !save_.failed->empty()) {
    folders.clear();
    auto base = env_->OpenDir(*save_.failed);
    auto entries =
        base.ok() ? env_->ListDirAt(*base) : Result<std::vector<DirEntry>>(base.status());
    if (entries.ok()) {
      std::vector<std::string> days;
      for (const DirEntry& e : *entries) {
        if (e.type == FileType::kDirectory) days.push_back(e.name);
      }
      std::sort(days.rbegin(), days.rend());  // newest day first
      for (const std::string& day : days) {
        auto sub = env_->OpenSubdir(*base, day, false);
        if (sub.ok()) folders.emplace_back(day + "/", std::make_shared<const Dir>(std::move(*sub)));
      }
    }
  }
  for (const auto& [folder, dir] : folders) {
    std::string suffixed = SuffixedName(name, job_id);
    if (env_->StatAt(*dir, suffixed).ok()) return folder + suffixed;
    // The plain name may be another job's file of the same name (the same file failed again
    // after an earlier retry, or a producer reusing names): its report says whose it is.
    if (env_->StatAt(*dir, name).ok()) {
      auto whose = ReportedJobOf(folder + std::string(name));
      if (!whose.ok() || *whose == job_id) return folder + std::string(name);
    }
  }
  return Status::NotFound("the file of job " + std::to_string(job_id) + " (" + std::string(name) +
                          ") is not in " + FailedDir() + " any more");
}

Result<int64_t> SpoolDir::ReportedJobOf(std::string_view failed_name) {
  auto parts = SplitDated(failed_name);
  if (!parts.ok()) return parts.status();
  std::string base = save_.failed && !save_.failed->empty() ? *save_.failed : FailedDir();
  if (!parts->first.empty()) base = JoinPath(base, parts->first);
  std::string report;
  SLUICE_RETURN_IF_ERROR(
      env_->ReadFile(JoinPath(base, ReportNameOf(parts->second)), 1 << 20, &report, nullptr));
  rapidjson::Document d;
  if (!ParseJson(report, &d).ok() || !d.IsObject() || !d.HasMember("job_id") ||
      !d["job_id"].IsInt64()) {
    return Status::NotFound("the report of " + std::string(failed_name) + " names no job");
  }
  return d["job_id"].GetInt64();
}

}  // namespace sluice
