// QueueDir: the moves of the queuedir protocol, between folders held open.
#include "spool/queuedir.h"

#include <algorithm>

namespace sluice {

QueueDir::QueueDir(Env* env, std::string root)
    : env_(env), folders_(env, std::move(root), {"tmp", "new", "cur", "logs", "dead"}) {}

Status QueueDir::Prepare() {
  Status st = folders_.Open(true);
  if (st.IsNotFound()) return MissingPath(env_, "the queuedir", root());
  return st;
}

std::string QueueDir::BaseId(std::string_view item) {
  size_t dot = item.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == item.size()) return std::string(item);
  for (size_t i = dot + 1; i < item.size(); ++i) {
    if (item[i] < '0' || item[i] > '9') return std::string(item);
  }
  return std::string(item.substr(0, dot));
}

int QueueDir::Retries(std::string_view item) {
  std::string base = BaseId(item);
  if (base.size() == item.size()) return 0;
  std::string digits(item.substr(base.size() + 1));
  // A hostile suffix of many digits must not overflow: past a million it is a million.
  if (digits.size() > 7) return 1'000'000;
  return std::atoi(digits.c_str());
}

bool QueueDir::IsItemName(std::string_view name) { return !name.empty() && name[0] != '.'; }

std::string QueueDir::LogPath(std::string_view item) const {
  return root() + "/logs/" + BaseId(item) + ".log";
}

Result<std::vector<QueueDir::Waiting>> QueueDir::ListNew() {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  const Dir& dir = *h->sub[kNew];
  auto entries = env_->ListDirAt(dir);
  if (!entries.ok()) return entries.status();
  std::vector<Waiting> out;
  for (const DirEntry& e : *entries) {
    if (e.type == FileType::kDirectory) continue;
    auto w = LookAt(dir, e.name);
    if (w.ok()) out.push_back(std::move(*w));
  }
  std::sort(out.begin(), out.end(), [](const Waiting& a, const Waiting& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.item < b.item;
  });
  return out;
}

Result<QueueDir::Waiting> QueueDir::LookNew(std::string_view item) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return LookAt(*h->sub[kNew], item);
}

Result<QueueDir::Waiting> QueueDir::LookAt(const Dir& dir, std::string_view name) {
  if (!IsItemName(name)) return Status::InvalidArgument(std::string(name) + " is not an item");
  auto info = env_->StatAt(dir, name);
  if (!info.ok()) return info.status();
  if (info->type != FileType::kRegular) {
    return Status::InvalidArgument(std::string(name) + " is not a regular file");
  }
  return Waiting{std::string(name), info->mtime_ns};
}

Result<std::vector<std::string>> QueueDir::ListCur() {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  auto entries = env_->ListDirAt(*h->sub[kCur]);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> out;
  for (const DirEntry& e : *entries) {
    if (IsItemName(e.name) && e.type != FileType::kDirectory) out.push_back(e.name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> QueueDir::ListDead() {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  auto entries = env_->ListDirAt(*h->sub[kDead]);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> out;
  for (const DirEntry& e : *entries) {
    bool log = e.name.size() > 4 && e.name.compare(e.name.size() - 4, 4, ".log") == 0;
    if (IsItemName(e.name) && !log && e.type != FileType::kDirectory) out.push_back(e.name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status QueueDir::Claim(std::string_view item) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  SLUICE_RETURN_IF_ERROR(env_->RenameAt(*h->sub[kNew], item, *h->sub[kCur], item, false));
  // As QueueDir.pop(): a claimed item is fresh, whatever time it had in new/.
  (void)env_->SetModifiedTimeAt(*h->sub[kCur], item, Env::kNowMicros);
  return Status::Ok();
}

Status QueueDir::Touch(std::string_view item) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  SLUICE_RETURN_IF_ERROR(env_->SetModifiedTimeAt(*h->sub[kCur], item, Env::kNowMicros));
  // Producers' cleanup also deletes logs older than cleanup_time: a quiet command keeps its.
  (void)env_->SetModifiedTimeAt(*h->sub[kLogs], BaseId(item) + ".log", Env::kNowMicros);
  return Status::Ok();
}

bool QueueDir::InCur(std::string_view item) {
  auto h = folders_.Get();
  return h.ok() && env_->StatAt(*h->sub[kCur], item).ok();
}

Result<std::string> QueueDir::Requeue(std::string_view item, int retries) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  std::string next = BaseId(item) + "." + std::to_string(retries);
  SLUICE_RETURN_IF_ERROR(env_->RenameAt(*h->sub[kCur], item, *h->sub[kNew], next, false));
  (void)env_->SetModifiedTimeAt(*h->sub[kNew], next, Env::kNowMicros);
  return next;
}

Status QueueDir::Kill(std::string_view item) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  SLUICE_RETURN_IF_ERROR(env_->RenameAt(*h->sub[kCur], item, *h->sub[kDead], item, false));
  Status st = env_->RenameAt(*h->sub[kLogs], BaseId(item) + ".log", *h->sub[kDead],
                             std::string(item) + ".log", true);
  return st.ok() || st.code() == Code::kNotFound ? Status::Ok() : st;
}

Status QueueDir::Remove(std::string_view item) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return env_->RemoveAt(*h->sub[kCur], item);
}

Result<std::vector<std::string>> QueueDir::RetryDead() {
  auto dead = ListDead();
  if (!dead.ok()) return dead.status();
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  const Dir& dead_dir = *h->sub[kDead];
  const Dir& new_dir = *h->sub[kNew];
  std::vector<std::string> moved;
  for (const std::string& item : *dead) {
    Status st = env_->RenameAt(dead_dir, item, new_dir, item, false);
    if (!st.ok()) return st.Annotate("moving " + item + " back into new/");
    (void)env_->RemoveAt(dead_dir, item + ".log");
    moved.push_back(item);
  }
  // Logs whose item is gone (retry_dead_queue removes every *.log in dead/).
  auto entries = env_->ListDirAt(dead_dir);
  if (entries.ok()) {
    for (const DirEntry& e : *entries) {
      if (e.name.size() > 4 && e.name.compare(e.name.size() - 4, 4, ".log") == 0) {
        (void)env_->RemoveAt(dead_dir, e.name);
      }
    }
  }
  SLUICE_RETURN_IF_ERROR(Sync());
  return moved;
}

Status QueueDir::AppendRaw(std::string_view item, std::string_view text) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  return env_->AppendFileAt(*h->sub[kLogs], BaseId(item) + ".log", text);
}

Status QueueDir::AppendLog(std::string_view item, const std::vector<std::string>& lines) {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  return env_->AppendFileAt(*h->sub[kLogs], BaseId(item) + ".log", text);
}

Status QueueDir::Sync() {
  auto h = folders_.Get();
  if (!h.ok()) return h.status();
  for (Sub sub : {kNew, kCur, kDead, kLogs}) SLUICE_RETURN_IF_ERROR(env_->SyncDir(*h->sub[sub]));
  return Status::Ok();
}

}  // namespace sluice
