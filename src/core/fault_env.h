// FaultEnv: an EnvWrapper that fails chosen calls, for tests of what Sluice does when the disk
// is full, fsync reports EIO, or a rename fails (beanstalkd's one-line failure injection).
#pragma once

#include <atomic>
#include <cerrno>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/env.h"

namespace sluice {

class FaultEnv : public EnvWrapper {
 public:
  enum class Op { kRead, kWrite, kRename, kSyncDir, kRemove };

  explicit FaultEnv(Env* target) : EnvWrapper(target) {}

  // From now on, the calls of `op` whose path contains `path_part` fail with `err`,
  // `times` times (-1: until Clear()).
  void Inject(Op op, int err, std::string path_part = "", int times = -1) {
    std::lock_guard<std::mutex> lock(mu_);
    rules_.push_back(Rule{op, err, std::move(path_part), times});
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    rules_.clear();
  }
  int injected() const { return injected_.load(); }

  Status ReadFile(const std::string& p, uint64_t max, std::string* out, FileInfo* i) override {
    if (int e = Take(Op::kRead, p)) return Status::FromErrno(e, "read " + p);
    return EnvWrapper::ReadFile(p, max, out, i);
  }
  Status WriteFileAtomic(const std::string& p, std::string_view d) override {
    if (int e = Take(Op::kWrite, p)) return Status::FromErrno(e, "write " + p);
    return EnvWrapper::WriteFileAtomic(p, d);
  }
  Status Rename(const std::string& f, const std::string& t) override {
    if (int e = Take(Op::kRename, f)) return Status::FromErrno(e, "rename " + f);
    return EnvWrapper::Rename(f, t);
  }
  Status RenameNoReplace(const std::string& f, const std::string& t) override {
    if (int e = Take(Op::kRename, f)) return Status::FromErrno(e, "rename " + f);
    return EnvWrapper::RenameNoReplace(f, t);
  }
  Status SyncDir(const std::string& p) override {
    if (int e = Take(Op::kSyncDir, p)) return Status::FromErrno(e, "fsync dir " + p);
    return EnvWrapper::SyncDir(p);
  }
  Status RemoveFile(const std::string& p) override {
    if (int e = Take(Op::kRemove, p)) return Status::FromErrno(e, "unlink " + p);
    return EnvWrapper::RemoveFile(p);
  }
  // The same faults for calls relative to a directory, matched on the path they stand for.
  Status RenameAt(const Dir& f, std::string_view fn, const Dir& t, std::string_view tn,
                  bool replace) override {
    if (int e = Take(Op::kRename, f.PathOf(fn))) {
      return Status::FromErrno(e, "rename " + f.PathOf(fn));
    }
    return EnvWrapper::RenameAt(f, fn, t, tn, replace);
  }
  Status RemoveAt(const Dir& d, std::string_view n) override {
    if (int e = Take(Op::kRemove, d.PathOf(n)))
      return Status::FromErrno(e, "unlink " + d.PathOf(n));
    return EnvWrapper::RemoveAt(d, n);
  }
  Status WriteFileAtomicAt(const Dir& d, std::string_view n, std::string_view data) override {
    if (int e = Take(Op::kWrite, d.PathOf(n))) return Status::FromErrno(e, "write " + d.PathOf(n));
    return EnvWrapper::WriteFileAtomicAt(d, n, data);
  }
  Status AppendFileAt(const Dir& d, std::string_view n, std::string_view data) override {
    if (int e = Take(Op::kWrite, d.PathOf(n))) return Status::FromErrno(e, "append " + d.PathOf(n));
    return EnvWrapper::AppendFileAt(d, n, data);
  }
  Status SyncDir(const Dir& d) override {
    if (int e = Take(Op::kSyncDir, d.path())) return Status::FromErrno(e, "fsync dir " + d.path());
    return EnvWrapper::SyncDir(d);
  }

 private:
  struct Rule {
    Op op;
    int err;
    std::string path_part;
    int times;
  };

  int Take(Op op, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    for (Rule& r : rules_) {
      if (r.op != op || r.times == 0) continue;
      if (!r.path_part.empty() && path.find(r.path_part) == std::string::npos) continue;
      if (r.times > 0) --r.times;
      ++injected_;
      return r.err;
    }
    return 0;
  }

  std::mutex mu_;
  std::vector<Rule> rules_;
  std::atomic<int> injected_{0};
};

}  // namespace sluice
