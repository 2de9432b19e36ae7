// Folders: open, check and reopen a directory and its sub-folders.
#include "spool/folders.h"

#include <sys/file.h>

#include <cerrno>

#include "core/spdlog.h"

namespace sluice {

Status MissingPath(Env* env, const std::string& what, const std::string& path) {
  std::string missing = path;
  for (std::string p = path; !p.empty() && p != "/";) {
    if (!env->Stat(p).status().IsNotFound()) break;
    missing = p;
    size_t slash = p.rfind('/');
    if (slash == std::string::npos) break;
    p = slash == 0 ? "/" : p.substr(0, slash);
  }
  std::string why = missing == path ? "" : " (" + missing + " is missing)";
  return Status::NotFound(what + " " + path + " does not exist" + why +
                          "; it is not created: check the path, or create it first");
}

Folders::Folders(Env* env, std::string root, std::vector<std::string> names)
    : env_(env), root_(std::move(root)), names_(std::move(names)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Status Folders::Open(bool create_root) {
  auto root = env_->OpenDir(root_);
  if (!root.ok() && root.status().IsNotFound() && create_root) {
    size_t slash = root_.rfind('/');
    std::string parent = slash == std::string::npos ? "."
                         : slash == 0               ? "/"
                                                    : root_.substr(0, slash);
    if (env_->Stat(parent).ok() && env_->CreateDirs(root_).ok()) root = env_->OpenDir(root_);
  }
  if (!root.ok()) {
    if (root.status().IsNotFound()) return MissingPath(env_, "the directory", root_);
    return root.status();
  }
  View v;
  v.root = std::make_shared<const Dir>(std::move(*root));
  v.sub.resize(names_.size());
  SLUICE_RETURN_IF_ERROR(Reopen(&v));
  for (size_t i = 0; i < names_.size(); ++i) {
    if (v.sub[i]->dev() != v.root->dev()) {
      return Status::FailedPrecondition(
          root_ + "/" + names_[i] + " is on another filesystem than " + root_ +
          " (a mount point?): files move between them by rename, which cannot cross "
          "filesystems");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  held_ = std::move(v);
  return Status::Ok();
}

Status Folders::Failed(Status st) {
  std::lock_guard<std::mutex> lock(mu_);
  broken_ = st;
  return st;
}

Status Folders::Check() {
  auto fresh = env_->OpenDir(root_);
  if (!fresh.ok()) {
    if (fresh.status().IsNotFound()) return Failed(Status::NotFound(root_ + " is missing"));
    return Failed(fresh.status());
  }
  View v;
  {
    std::lock_guard<std::mutex> lock(mu_);
    v = held_;
  }
  if (!v.root || fresh->dev() != v.root->dev() || fresh->ino() != v.root->ino()) {
    if (Status st = LockNew(*fresh); !st.ok()) return Failed(st);
    if (v.root) spdlog::warn("{} was created again; using the new one", root_);
    v.root = std::make_shared<const Dir>(std::move(*fresh));
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    v.sub.assign(names_.size(), nullptr);  // everything in it is new
  }
  if (Status st = Reopen(&v); !st.ok()) return Failed(st);
  std::lock_guard<std::mutex> lock(mu_);
  held_ = std::move(v);
  broken_ = Status::Ok();
  return Status::Ok();
}

Status Folders::Reopen(View* v) {
  for (size_t i = 0; i < names_.size(); ++i) {
    auto sub = Sub(*v->root, v->sub[i], names_[i]);
    if (!sub.ok()) return sub.status();
    v->sub[i] = *sub;
  }
  return Status::Ok();
}

Result<Folders::DirPtr> Folders::Sub(const Dir& root, const DirPtr& held, const std::string& name) {
  auto info = env_->StatAt(root, name);
  if (held && info.ok() && info->type == FileType::kDirectory && info->dev == held->dev() &&
      info->ino == held->ino()) {
    return held;
  }
  auto opened = env_->OpenSubdir(root, name, true);
  if (!opened.ok()) return opened.status();
  if (held) {
    spdlog::warn("{} was {}; using the {} one", root.PathOf(name),
                 info.ok() ? "replaced" : "deleted", info.ok() ? "new" : "recreated");
  }
  return DirPtr(std::make_shared<const Dir>(std::move(*opened)));
}

void Folders::LockRecreated(Lock mode) {
  std::lock_guard<std::mutex> lock(mu_);
  lock_ = mode;
}

Status Folders::LockNew(const Dir& fresh) {
  Lock mode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mode = lock_;
  }
  if (mode == Lock::kNone) return Status::Ok();
  // The lock lives as long as the descriptor: until this directory is replaced in turn.
  if (::flock(fresh.fd(), (mode == Lock::kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
    return Status::Ok();
  }
  if (errno != EWOULDBLOCK) return Status::FromErrno(errno, "lock " + root_);
  return Status::FailedPrecondition(
      root_ + " was created again and another daemon runs it now; nothing is taken or moved " +
      "here while it does (one daemon per spool or queuedir)");
}

uint64_t Folders::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

Result<Folders::View> Folders::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!held_.root) return Status::FailedPrecondition(root_ + " is not open");
  if (!broken_.ok()) return broken_;
  return held_;
}

}  // namespace sluice
