// Reads `git log` output as it comes into commit items, a commit at a time, so that a history of
// any length is read in bounded memory.
//
// The items are Perceval's git items: git is run with Perceval's own options (`--raw --numstat
// --pretty=fuller --decorate=full --parents -M -C -c`) and its output read by the rules of
// Perceval's parser (the same fields, file lists, rename guesses, trailers and Merge header), so
// that a consumer of Perceval's items reads these unchanged. In that output every line of a
// message is indented and every odd byte of a path is quoted by git: nothing a commit holds can
// be taken for the structure around it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "store/task.h"

namespace sluice {

// sha1 of `s`, in hex (Perceval's uuids; names of clones).
std::string Sha1Hex(const std::string& s);

class GitLogParser {
 public:
  // A commit's entry (its message and files) larger than this fails the run.
  static constexpr size_t kMaxCommitBytes = size_t{256} << 20;
  // The Perceval release (and its git backend's version) whose items these are.
  static constexpr const char* kPercevalVersion = "1.4.7";
  static constexpr const char* kBackendVersion = "1.0.1";

  // Items carry `origin` (their uuid is sha1 of "origin:hash") and `tag` (the origin when
  // empty), and `fetched_micros` as their `timestamp`. Commits committed before `from_micros`,
  // or at or after `to_micros` when it is not 0, are left out.
  GitLogParser(std::string origin, std::string tag, int64_t from_micros, int64_t to_micros,
               int64_t fetched_micros);

  // The options of `git log` whose output this parser reads (before the revisions).
  static std::vector<std::string> LogOptions();
  // The next bytes of git's output. An error when it is not what LogOptions asked for.
  Status Feed(std::string_view bytes);
  // The output ended: the last commit.
  Status Finish();

  // The items of the commits read and not taken yet, oldest first as git wrote them.
  const std::vector<TaskItem>& items() const { return items_; }
  size_t item_bytes() const { return item_bytes_; }
  std::vector<TaskItem> Take();
  int64_t commits() const { return commits_; }  // items made in all

 private:
  // One file of a commit, with Perceval's keys in Perceval's order: from an action line
  // (modes, indexes, action, file, newfile, then added and removed from the stats) or from a
  // stats line alone (file, added, removed).
  struct File {
    bool from_action = false;
    std::vector<std::string> modes, indexes;
    std::string action, file;
    std::optional<std::string> newfile, added, removed;
  };
  struct Commit {
    std::string hash;
    std::vector<std::string> parents, refs;
    std::vector<std::pair<std::string, std::string>> headers;  // in order, a key once
    std::optional<std::string> message;
    std::vector<std::pair<std::string, std::vector<std::string>>> trailers;
    std::vector<File> files;  // in the order met; written sorted by key
    std::vector<std::string> keys;
    std::unordered_map<std::string, size_t> by_key;
    std::vector<File> pending;  // stats lines of files no action line named (yet)
    std::unordered_map<std::string, size_t> pending_by_name;
  };
  enum class State { kInit, kCommit, kHeader, kMessage, kFile };

  Status Line(std::string_view line);
  // One state's handling of `line`; false when the line is to be read again in the new state.
  Result<bool> Handle(std::string_view line);
  Status StartCommit(std::string_view line);
  void Trailer(std::string_view line);
  bool ActionLine(std::string_view line);
  bool StatsLine(std::string_view line);
  File* FileOf(const std::string& key);
  File* AddFile(const std::string& key, File f);
  void SettlePending();
  struct Renamed {
    std::string old_name, new_name;  // without '{' and without '}'
    std::string newfile;
  };
  std::optional<std::string> GuessNewName(const std::string& stats_name,
                                          const std::vector<Renamed>& renamed);
  Status EndCommit();

  std::string origin_, tag_;
  int64_t from_, to_, fetched_;
  std::string partial_;  // an unfinished line
  State state_ = State::kInit;
  std::optional<Commit> commit_;
  size_t commit_bytes_ = 0;
  size_t guess_work_ = 0;  // comparisons spent guessing renamed names in this commit
  std::vector<TaskItem> items_;
  size_t item_bytes_ = 0;
  int64_t commits_ = 0;
  int64_t line_number_ = 0;
};

}  // namespace sluice
