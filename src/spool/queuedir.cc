// QueueDir: the moves of the queuedir protocol.
#include "spool/queuedir.h"

#include <algorithm>

namespace sluice {

QueueDir::QueueDir(Env* env, std::string root) : env_(env), root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Status QueueDir::Prepare() {
  for (const char* sub : {"tmp", "new", "cur", "logs", "dead"}) {
    SLUICE_RETURN_IF_ERROR(env_->CreateDirs(root_ + "/" + sub));
  }
  return Status::Ok();
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
  return std::atoi(std::string(item.substr(base.size() + 1)).c_str());
}

bool QueueDir::IsItemName(std::string_view name) { return !name.empty() && name[0] != '.'; }

std::string QueueDir::LogPath(std::string_view item) const {
  return root_ + "/logs/" + BaseId(item) + ".log";
}

Result<std::vector<QueueDir::Waiting>> QueueDir::ListNew() {
  auto entries = env_->ListDir(NewDir());
  if (!entries.ok()) return entries.status();
  std::vector<Waiting> out;
  for (const DirEntry& e : *entries) {
    if (!IsItemName(e.name) || e.type == FileType::kDirectory) continue;
    auto info = env_->Stat(NewDir() + "/" + e.name);
    if (!info.ok() || info->type != FileType::kRegular) continue;
    out.push_back({e.name, info->mtime_ns});
  }
  std::sort(out.begin(), out.end(), [](const Waiting& a, const Waiting& b) {
    return a.due_ns != b.due_ns ? a.due_ns < b.due_ns : a.item < b.item;
  });
  return out;
}

Result<std::vector<std::string>> QueueDir::ListCur() {
  auto entries = env_->ListDir(CurDir());
  if (!entries.ok()) return entries.status();
  std::vector<std::string> out;
  for (const DirEntry& e : *entries) {
    if (IsItemName(e.name) && e.type != FileType::kDirectory) out.push_back(e.name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> QueueDir::ListDead() {
  auto entries = env_->ListDir(DeadDir());
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
  std::string name(item);
  return env_->RenameNoReplace(NewDir() + "/" + name, CurDir() + "/" + name);
}

Result<std::string> QueueDir::Requeue(std::string_view item, int retries, int64_t due_micros) {
  std::string next = BaseId(item) + "." + std::to_string(retries);
  std::string cur = CurPath(item);
  // The due time is set before the move, so the item never shows in new/ as due too early.
  SLUICE_RETURN_IF_ERROR(env_->SetModifiedTime(cur, due_micros));
  SLUICE_RETURN_IF_ERROR(env_->RenameNoReplace(cur, NewDir() + "/" + next));
  return next;
}

Status QueueDir::Kill(std::string_view item) {
  std::string name(item);
  SLUICE_RETURN_IF_ERROR(env_->RenameNoReplace(CurPath(item), DeadDir() + "/" + name));
  Status st = env_->Rename(LogPath(item), DeadDir() + "/" + BaseId(item) + ".log");
  return st.ok() || st.code() == Code::kNotFound ? Status::Ok() : st;
}

Status QueueDir::Remove(std::string_view item) { return env_->RemoveFile(CurPath(item)); }

Result<std::vector<std::string>> QueueDir::RetryDead() {
  auto dead = ListDead();
  if (!dead.ok()) return dead.status();
  std::vector<std::string> moved;
  for (const std::string& item : *dead) {
    std::string base = BaseId(item);
    Status st = env_->RenameNoReplace(DeadDir() + "/" + item, NewDir() + "/" + base);
    if (!st.ok()) return st.Annotate("moving " + item + " back into new/");
    (void)env_->Touch(NewDir() + "/" + base);  // due now
    (void)env_->RemoveFile(DeadDir() + "/" + base + ".log");
    moved.push_back(item);
  }
  SLUICE_RETURN_IF_ERROR(Sync());
  return moved;
}

Status QueueDir::AppendLog(std::string_view item, const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  return env_->AppendFile(LogPath(item), text);
}

Status QueueDir::Sync() {
  for (const char* sub : {"new", "cur", "dead", "logs"}) {
    SLUICE_RETURN_IF_ERROR(env_->SyncDir(root_ + "/" + sub));
  }
  return Status::Ok();
}

}  // namespace sluice
