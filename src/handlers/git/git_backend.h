// The git backend: clones a repository (any URL git takes, local paths included) under the
// archive path, updates it on later runs, and emits one item per commit committed at or after
// `from_date`: hash, parents, author, committer, their dates, message, and the files changed
// with lines added and removed. Items carry Perceval's uuid (sha1 of "origin:hash").
//
// backend_args: uri (required), from_date, to_date, branches (list; default every branch),
// no_update (do not fetch; use the clone as it is), gitpath (accepted for Arthur's clients and
// ignored: clones live under the archive path, so an API client cannot make the daemon write
// elsewhere), latest_items (accepted, ignored: the cursor already limits a run to new commits).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "handlers/backend.h"

namespace sluice {

class GitBackend : public Backend {
 public:
  // Commits handed to FetchRequest::save at a time (or fewer, once their items reach
  // kBatchBytes). Large: each batch's commit rewrites much of the items' index of uuids.
  static constexpr size_t kBatchItems = 50000;
  static constexpr size_t kBatchBytes = size_t{32} << 20;

  // `archive_path`: clones go to <archive_path>/git/; `timeout_s` bounds each git command.
  GitBackend(std::string archive_path, double timeout_s, size_t batch_items = kBatchItems);

  std::string_view name() const override { return "git"; }
  std::vector<std::string> categories() const override { return {"commit"}; }
  Status Validate(const std::string& args) const override;
  Result<std::vector<TaskItem>> Fetch(const FetchRequest& request) override;

  // Where the clone of `uri` lives.
  std::string ClonePath(const std::string& uri) const;

 private:
  Status Update(const std::string& uri, const std::string& dir, bool ssl_verify,
                const FetchRequest& request);
  // `on_stdout`, when set, takes git's output as it comes (see SubprocessOptions).
  Result<std::string> Git(const std::vector<std::string>& args, const FetchRequest& request,
                          std::function<bool(std::string_view)> on_stdout = nullptr);

  std::string archive_path_;
  double timeout_s_;
  size_t batch_items_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> clone_locks_;  // one git at a time per clone
};

}  // namespace sluice
