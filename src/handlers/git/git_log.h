// Reads `git log` output as it comes into commit items (Perceval's git items), a commit at a
// time, so that a history of any length is read in bounded memory.
//
// Each commit's fields are on lines of their own between two marker lines made at random for
// each run: nothing a commit holds (a message with control characters or lines of its own
// making, a name with odd bytes) can be taken for the structure around it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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

  // Items carry `origin` (their uuid is sha1 of "origin:hash"). Commits committed before
  // `from_micros`, or at or after `to_micros` when it is not 0, are left out.
  GitLogParser(std::string origin, int64_t from_micros, int64_t to_micros);

  // The --format argument for `git log` (with --numstat) that this parser reads.
  std::string FormatArg() const;
  // The next bytes of git's output. An error when it is not what FormatArg asked for.
  Status Feed(std::string_view bytes);
  // The output ended: the last commit.
  Status Finish();

  // The items of the commits read and not taken yet, oldest first as git wrote them.
  const std::vector<TaskItem>& items() const { return items_; }
  size_t item_bytes() const { return item_bytes_; }
  std::vector<TaskItem> Take();
  int64_t commits() const { return commits_; }  // items made in all

 private:
  Status Line(std::string_view line);
  Status EndCommit();

  std::string origin_;
  std::string start_, end_;  // the marker lines
  int64_t from_, to_;
  std::string partial_;  // an unfinished line
  enum class Part { kNone, kHeader, kMessage, kFiles } part_ = Part::kNone;
  std::vector<std::string> header_;
  std::string message_;
  std::vector<std::string> files_;
  size_t commit_bytes_ = 0;
  std::vector<TaskItem> items_;
  size_t item_bytes_ = 0;
  int64_t commits_ = 0;
};

}  // namespace sluice
