// GitLogParser: git's output read line by line into items.
#include "handlers/git/git_log.h"

#include <openssl/sha.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <random>

#include "core/clock.h"
#include "core/text.h"

namespace sluice {
namespace {

std::string RandomHex() {
  std::random_device rd;
  std::string bytes(16, '\0');
  for (char& b : bytes) b = static_cast<char>(rd());
  return HexBytes(bytes);
}

// The header lines after the start marker: hash, parents, author, author date, committer,
// commit date.
constexpr size_t kHeaderLines = 6;

}  // namespace

std::string Sha1Hex(const std::string& s) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return HexBytes(std::string_view(reinterpret_cast<const char*>(d), sizeof(d)));
}

GitLogParser::GitLogParser(std::string origin, int64_t from_micros, int64_t to_micros)
    : origin_(std::move(origin)), from_(from_micros), to_(to_micros) {
  std::string token = RandomHex();
  start_ = "sluice-commit-" + token;
  end_ = "sluice-message-end-" + token;
}

std::string GitLogParser::FormatArg() const {
  return "--format=" + start_ + "%n%H%n%P%n%an <%ae>%n%aI%n%cn <%ce>%n%cI%n%B%n" + end_;
}

Status GitLogParser::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_.size() + bytes.size() > kMaxCommitBytes) {
        return Status::FailedPrecondition("a commit's entry in git log is larger than " +
                                          std::to_string(kMaxCommitBytes >> 20) + " MiB");
      }
      partial_.append(bytes);
      return Status::Ok();
    }
    Status st;
    if (partial_.empty()) {
      st = Line(bytes.substr(0, nl));
    } else {
      partial_.append(bytes.substr(0, nl));
      st = Line(partial_);
      partial_.clear();
    }
    if (!st.ok()) return st;
    bytes.remove_prefix(nl + 1);
  }
  return Status::Ok();
}

Status GitLogParser::Finish() {
  if (!partial_.empty()) {
    std::string last = std::move(partial_);
    partial_.clear();
    SLUICE_RETURN_IF_ERROR(Line(last));
  }
  return EndCommit();
}

Status GitLogParser::Line(std::string_view line) {
  if (line == start_) {
    SLUICE_RETURN_IF_ERROR(EndCommit());
    part_ = Part::kHeader;
    return Status::Ok();
  }
  commit_bytes_ += line.size() + 1;
  if (commit_bytes_ > kMaxCommitBytes) {
    return Status::FailedPrecondition("a commit's entry in git log is larger than " +
                                      std::to_string(kMaxCommitBytes >> 20) + " MiB");
  }
  switch (part_) {
    case Part::kNone:
      if (line.empty()) return Status::Ok();
      return Status::Internal("unexpected git log output before the first commit: '" +
                              PrintableLine(line.substr(0, 80)) + "'");
    case Part::kHeader:
      header_.emplace_back(line);
      if (header_.size() == kHeaderLines) part_ = Part::kMessage;
      return Status::Ok();
    case Part::kMessage:
      if (line == end_) {
        part_ = Part::kFiles;
        return Status::Ok();
      }
      message_.append(line);
      message_ += '\n';
      return Status::Ok();
    case Part::kFiles:
      if (!line.empty()) files_.emplace_back(line);
      return Status::Ok();
  }
  return Status::Ok();
}

Status GitLogParser::EndCommit() {
  if (part_ == Part::kNone) return Status::Ok();
  if (part_ != Part::kFiles) {
    return Status::Internal("git log's output ended inside the entry of commit " +
                            PrintableLine(header_.empty() ? "?" : header_[0]));
  }
  const std::vector<std::string>& f = header_;
  auto commit_date = ParseTime(f[5]);
  auto author_date = ParseTime(f[3]);
  if (!commit_date.ok() || !author_date.ok()) {
    return Status::Internal("unexpected date in git log: '" + PrintableLine(f[5]) + "'");
  }
  if (*commit_date >= from_ && (to_ == 0 || *commit_date < to_)) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    // Whatever bytes a commit holds, the item is valid UTF-8 JSON (every store takes it).
    auto str = [&w](std::string_view s) {
      std::string valid = ValidUtf8(s);
      w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
    };
    w.StartObject();
    w.Key("backend_name");
    w.String("Git");
    w.Key("category");
    w.String("commit");
    w.Key("origin");
    str(origin_);
    w.Key("uuid");
    std::string uuid = Sha1Hex(origin_ + ":" + f[0]);
    str(uuid);
    w.Key("updated_on");
    w.Double(static_cast<double>(*commit_date) / 1e6);
    w.Key("data");
    w.StartObject();
    w.Key("commit");
    str(f[0]);
    w.Key("parents");
    w.StartArray();
    std::string_view parents = f[1];
    while (!parents.empty()) {
      size_t sp = parents.find(' ');
      if (sp != 0) str(parents.substr(0, sp));
      if (sp == std::string_view::npos) break;
      parents.remove_prefix(sp + 1);
    }
    w.EndArray();
    w.Key("Author");
    str(f[2]);
    w.Key("AuthorDate");
    str(f[3]);
    w.Key("Commit");
    str(f[4]);
    w.Key("CommitDate");
    str(f[5]);
    w.Key("message");
    while (!message_.empty() && message_.back() == '\n') message_.pop_back();
    str(message_);
    w.Key("files");
    w.StartArray();
    for (const std::string& line : files_) {
      // added, removed, path ("-" for a binary file's counts); a path with a tab is quoted.
      size_t t1 = line.find('\t');
      size_t t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
      if (t2 == std::string::npos) continue;
      std::string cols[2] = {line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1)};
      w.StartObject();
      w.Key("file");
      str(std::string_view(line).substr(t2 + 1));
      for (int i = 0; i < 2; ++i) {
        w.Key(i == 0 ? "added" : "removed");
        if (cols[i] == "-") {
          w.Null();  // a binary file
        } else {
          w.Int64(std::strtoll(cols[i].c_str(), nullptr, 10));
        }
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
    TaskItem item;
    item.uuid = std::move(uuid);
    item.updated_on = *commit_date;
    item.data.assign(buf.GetString(), buf.GetSize());
    item_bytes_ += item.data.size();
    items_.push_back(std::move(item));
    ++commits_;
  }
  part_ = Part::kNone;
  header_.clear();
  message_.clear();
  files_.clear();
  commit_bytes_ = 0;
  return Status::Ok();
}

std::vector<TaskItem> GitLogParser::Take() {
  std::vector<TaskItem> out = std::move(items_);
  items_.clear();
  item_bytes_ = 0;
  return out;
}

}  // namespace sluice
