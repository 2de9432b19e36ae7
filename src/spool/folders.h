// Folders: a directory and its named sub-folders, held open (core/env.h Dir) for the moves
// of a spool or a queuedir.
//
// Whoever can write the directory can rename, delete or replace its sub-folders while the
// daemon runs. Open() and Check() make sure what is held is what the paths name: a sub-folder
// deleted is created again, one replaced by another directory (or the whole directory deleted
// and created again) is reopened, one replaced by a symbolic link is refused. Moves go between
// the descriptors, so they never leave the folders, whatever the paths name meanwhile.
// Thread-safe: Get() hands out a snapshot that stays usable while Check() replaces it.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/env.h"

namespace sluice {

class Folders {
 public:
  using DirPtr = std::shared_ptr<const Dir>;
  struct View {
    DirPtr root;
    std::vector<DirPtr> sub;  // in the order of the names given
  };

  Folders(Env* env, std::string root, std::vector<std::string> names);

  // Opens the directory and its sub-folders (created when missing). The directory itself
  // must exist (NotFound naming the first missing part of its path), unless `create_root`:
  // then it is created when its parent exists (never the parents).
  Status Open(bool create_root);
  // Looks again at what the paths name (see above). NotFound while the directory is missing;
  // FailedPrecondition while a sub-folder is a symlink or not a directory. Until a later
  // Check() succeeds, Get() answers with that error: nothing moves while the layout is wrong.
  Status Check();
  // What is held now: FailedPrecondition before Open(), the last Check()'s error after one
  // that failed.
  Result<View> Get() const;
  const std::string& root() const { return root_; }
  // Goes up each time the directory itself is opened anew (it was deleted and created again).
  uint64_t generation() const;

  // A daemon locks its spools when it starts (cli/daemon_lock.h); a directory deleted and
  // created again while it runs is a new one, which Check() locks (flock) before taking it.
  // While another daemon holds the new one, Check() fails (FailedPrecondition) and nothing
  // moves: two daemons never run one spool. kNone (the default): not locked.
  enum class Lock { kNone, kShared, kExclusive };
  void LockRecreated(Lock mode);

 private:
  // `name` in `root`, opened (created when missing), or `held` when it is still what is there.
  Result<DirPtr> Sub(const Dir& root, const DirPtr& held, const std::string& name);
  Status Reopen(View* view);
  // Takes the lock LockRecreated() asks for on a directory found anew.
  Status LockNew(const Dir& fresh);

  Env* env_;
  std::string root_;
  std::vector<std::string> names_;
  Status Failed(Status st);

  mutable std::mutex mu_;
  View held_;
  Status broken_;  // the last Check()'s error
  uint64_t generation_ = 0;
  Lock lock_ = Lock::kNone;
};

// NotFound: "WHAT PATH does not exist (PART is missing)", naming the first missing part.
Status MissingPath(Env* env, const std::string& what, const std::string& path);

}  // namespace sluice
