// QueueDir: Mozilla's queuedir layout, the state of each item in the file system.
//
//   DIR/tmp/   producers write here first ...
//   DIR/new/   ... then rename in: items waiting, taken oldest modification time first.
//   DIR/cur/   claimed items (claim = rename new/ -> cur/, then their time is renewed), and
//              failed items waiting for their retry, as command_runner keeps them. Their
//              time is renewed while they run or wait: Mozilla's producers (QueueDir.add ->
//              cleanup) move items older than cleanup_time from cur/ back into new/.
//   DIR/logs/  one log per item across its retries: logs/<id>.log
//   DIR/dead/  items past their retries, with their log as dead/<item>.log (the item's whole
//              name, retry suffix included, as command_runner's murder() names it)
//
// An item's name is its id, plus ".N" after its Nth retry ("1700000000-3-1234abcd.2").
//
// The five folders are held open (spool/folders.h): moves go between their descriptors and
// never through a symbolic link, whatever is done to the paths meanwhile.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "spool/folders.h"

namespace sluice {

class QueueDir {
 public:
  QueueDir(Env* env, std::string root);

  // Opens the queuedir (created when its parent exists, as Mozilla's QueueDir does, never
  // the parents) and the five folders (created when missing).
  Status Prepare();
  // Looks again at the folders (Folders::Check): NotFound while the queuedir is missing,
  // FailedPrecondition while a folder is a symlink.
  Status Check() { return folders_.Check(); }
  uint64_t generation() const { return folders_.generation(); }
  // The queuedir deleted and created again is locked before it is taken (Folders::LockRecreated).
  void LockRecreated(Folders::Lock mode) { folders_.LockRecreated(mode); }

  const std::string& root() const { return folders_.root(); }
  std::string NewDir() const { return root() + "/new"; }
  std::string CurDir() const { return root() + "/cur"; }
  std::string DeadDir() const { return root() + "/dead"; }
  std::string CurPath(std::string_view item) const { return CurDir() + "/" + std::string(item); }
  std::string LogPath(std::string_view item) const;

  // The id without its retry suffix, and the retries it had (0 without one).
  static std::string BaseId(std::string_view item);
  static int Retries(std::string_view item);
  // Whether `name` in new/ is an item: not a dotfile.
  static bool IsItemName(std::string_view name);

  struct Waiting {
    std::string item;
    int64_t mtime_ns = 0;
  };
  // Items in new/, oldest first (by modification time, as QueueDir.pop takes them).
  Result<std::vector<Waiting>> ListNew();
  // One name in new/ as ListNew() would list it: NotFound when gone, InvalidArgument when it
  // is not an item (a dotfile, not a regular file).
  Result<Waiting> LookNew(std::string_view item);
  Result<std::vector<std::string>> ListCur();
  Result<std::vector<std::string>> ListDead();  // items only, not their logs

  // new/ITEM -> cur/ITEM, its time renewed. NotFound when another claimed it (or it vanished).
  Status Claim(std::string_view item);
  // Renews the time of cur/ITEM and of its log ("still working on it"). NotFound when the
  // item is not in cur/ any more.
  Status Touch(std::string_view item);
  // Whether cur/ITEM is there.
  bool InCur(std::string_view item);
  // cur/ITEM -> new/<id>.<retries>, its time renewed. Returns the new name.
  Result<std::string> Requeue(std::string_view item, int retries);
  // cur/ITEM -> dead/ITEM, and logs/<id>.log -> dead/ITEM.log.
  Status Kill(std::string_view item);
  // Deletes cur/ITEM (a finished item).
  Status Remove(std::string_view item);
  // dead/ITEM -> new/ITEM, as Mozilla's retry_dead_queue does (a plain mv: the name, so the
  // retry count, and the time are kept), and deletes the logs in dead/. The names.
  Result<std::vector<std::string>> RetryDead();
  // Appends lines to the item's log (created when missing).
  Status AppendLog(std::string_view item, const std::vector<std::string>& lines);
  // Appends text as it is to the item's log.
  Status AppendRaw(std::string_view item, std::string_view text);
  // Makes the renames so far durable (fsync of new/, cur/, dead/, logs/).
  Status Sync();

 private:
  Result<Waiting> LookAt(const Dir& dir, std::string_view name);
  enum Sub { kTmp = 0, kNew, kCur, kLogs, kDead };
  Env* env_;
  Folders folders_;
};

}  // namespace sluice
