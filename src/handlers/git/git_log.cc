// GitLogParser: git's output read line by line into Perceval's items, by Perceval's rules.
#include "handlers/git/git_log.h"

#include <openssl/sha.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <re2/re2.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/clock.h"
#include "core/text.h"

namespace sluice {
namespace {

// The trailers Perceval keeps (lists of their values), by their capitalised names.
constexpr std::string_view kTrailers[] = {"Acked-by",      "Co-authored-by", "Helped-by",
                                          "Mentored-by",   "Reported-by",    "Reviewed-by",
                                          "Signed-off-by", "Suggested-by",   "Tested-by"};

// Guessing a renamed file's name compares names pairwise; past this many comparisons in one
// commit (made of names written to defeat it) the guess is given up, as when none matches.
constexpr size_t kGuessBudget = 20'000'000;

// Perceval's patterns for a commit's first line and a file's action line, run by RE2 as
// Python's re runs them (the same leftmost-first choice of groups, in linear time), on bytes.
const RE2& Pattern(const char* text) {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  return *new RE2(text, o);  // one of each, for the process's life
}
const RE2& CommitPattern() {
  static const RE2& re =
      Pattern(R"(commit[ \t]([a-f0-9]{40}(?:[a-f0-9]{24})?))"  // sha1 (sha256 beside Perceval)
              R"((?:[ \t]([a-f0-9][a-f0-9 \t]+))?(?:[ \t]\((.+)\))?)");
  return re;
}
const RE2& ActionPattern() {
  static const RE2& re = Pattern(
      R"((:+)((?:[0-9]{6}[ \t])+)((?:[a-f0-9]+\.{0,3}[ \t])+)([^\t]+)\t+([^\t]+)(?:\t+(.+))?)");
  return re;
}

re2::StringPiece Piece(std::string_view s) { return re2::StringPiece(s.data(), s.size()); }
std::string_view View(re2::StringPiece s) { return std::string_view(s.data(), s.size()); }

bool SpaceOrTab(char c) { return c == ' ' || c == '\t'; }
bool Digit(char c) { return c >= '0' && c <= '9'; }
// What Python's str.strip() and \s take, within ASCII.
bool PyWhitespace(char c) {
  return (c >= '\t' && c <= '\r') || c == ' ' || (c >= 0x1c && c <= 0x1f);
}

std::string_view PyStrip(std::string_view s) {
  while (!s.empty() && PyWhitespace(s.front())) s.remove_prefix(1);
  while (!s.empty() && PyWhitespace(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string> Split(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  while (true) {
    size_t at = s.find(sep);
    out.emplace_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + sep.size());
  }
}

// Perceval's list of a field: stripped, split on `sep`, each part stripped.
std::vector<std::string> ParseList(std::string_view data, std::string_view sep) {
  std::vector<std::string> out;
  if (data.empty()) return out;
  for (const std::string& part : Split(PyStrip(data), sep)) out.emplace_back(PyStrip(part));
  return out;
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  while (true) {
    size_t at = s.find(from);
    out.append(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    out.append(to);
    s.remove_prefix(at + from.size());
  }
}

std::string Join(const std::vector<std::string>& parts, size_t from, size_t to,
                 std::string_view sep) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (i > from) out.append(sep);
    out.append(parts[i]);
  }
  return out;
}

// "Name: value" as Perceval's header and trailer pattern takes it
// (^[a-zA-z0-9\-]+:[ \t]+(.+)$, the class running from 'A' to 'z').
bool HeaderLine(std::string_view line, std::string_view* name, std::string_view* value) {
  size_t i = 0;
  while (i < line.size() &&
         ((line[i] >= 'A' && line[i] <= 'z') || Digit(line[i]) || line[i] == '-'))
    ++i;
  if (i == 0 || i >= line.size() || line[i] != ':') return false;
  size_t k = i + 1, m = k;
  while (m < line.size() && SpaceOrTab(line[m])) ++m;
  if (m == k) return false;
  if (m < line.size()) {
    *value = line.substr(m);
  } else if (m - k >= 2) {
    *value = line.substr(line.size() - 1);  // the blanks but one, then one as the value
  } else {
    return false;
  }
  *name = line.substr(0, i);
  return true;
}

// ".+" after "\t+" at `at` (a tab): the text after the tabs, or the last tab when only tabs
// are left and there are two or more.
bool TabsThenRest(std::string_view line, size_t at, std::string_view* rest) {
  size_t i = at;
  while (i < line.size() && line[i] == '\t') ++i;
  if (i == at) return false;
  if (i < line.size()) {
    *rest = line.substr(i);
    return true;
  }
  if (i - at < 2) return false;
  *rest = line.substr(line.size() - 1);
  return true;
}

// Python's s[from:to] for non-negative bounds.
std::string_view Slice(std::string_view s, size_t from, size_t to) {
  to = std::min(to, s.size());
  return from >= to ? std::string_view() : s.substr(from, to - from);
}

// The name after a rename in a stats line: "old => new", "{old => new}/name",
// "name/{old => new}" (Perceval's __get_new_filepath).
std::string NewFilePath(std::string_view f) {
  size_t i = f.find('{'), j = f.find('}');
  if (i != std::string_view::npos && j != std::string_view::npos) {
    size_t arrow = f.find(" => ", i);
    size_t start = arrow == std::string_view::npos ? 3 : arrow + 4;
    std::string joined(f.substr(0, i));
    joined.append(Slice(f, start, j));
    joined.append(f.substr(j + 1));
    return ReplaceAll(joined, "//", "/");
  }
  if (f.find(" => ") != std::string_view::npos) return Split(f, " => ")[1];
  return std::string(f);
}

// git's default date ("Tue Mar 5 07:08:09 2024 +0530") as microseconds.
Result<int64_t> GitDate(std::string_view s) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::vector<std::string> f;
  for (const std::string& part : Split(s, " ")) {
    if (!part.empty()) f.push_back(part);
  }
  if (f.size() != 6 || f[5].size() != 5 || f[3].size() != 8) {
    return Status::InvalidArgument("not a git date");
  }
  int month = 0;
  for (int m = 0; m < 12; ++m) {
    if (f[1] == kMonths[m]) month = m + 1;
  }
  if (month == 0 || f[2].size() > 2 || f[4].size() != 4) {
    return Status::InvalidArgument("not a git date");
  }
  char iso[48];
  std::snprintf(iso, sizeof(iso), "%s-%02d-%02dT%sZ", f[4].c_str(), month, std::atoi(f[2].c_str()),
                f[3].c_str());
  auto utc = ParseTime(iso);
  if (!utc.ok()) return utc.status();
  const std::string& z = f[5];
  if ((z[0] != '+' && z[0] != '-') ||
      !std::all_of(z.begin() + 1, z.end(), [](char c) { return Digit(c); })) {
    return Status::InvalidArgument("not a git date");
  }
  int64_t offset = (std::stoi(z.substr(1, 2)) * 60 + std::stoi(z.substr(3, 2))) * 60'000'000LL;
  return z[0] == '+' ? *utc - offset : *utc + offset;
}

}  // namespace

std::string Sha1Hex(const std::string& s) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return HexBytes(std::string_view(reinterpret_cast<const char*>(d), sizeof(d)));
}

GitLogParser::GitLogParser(std::string origin, std::string tag, int64_t from_micros,
                           int64_t to_micros, int64_t fetched_micros)
    : origin_(std::move(origin)),
      tag_(tag.empty() ? origin_ : std::move(tag)),
      from_(from_micros),
      to_(to_micros),
      fetched_(fetched_micros) {}

std::vector<std::string> GitLogParser::LogOptions() {
  // Perceval's options, and what keeps a user's git configuration from changing the output
  // (signatures, notes, abbreviated hashes, another date format, colours, textconv filters).
  return {"--raw",
          "--numstat",
          "--pretty=fuller",
          "--decorate=full",
          "--parents",
          "-M",
          "-C",
          "-c",
          "--no-color",
          "--date=default",
          "--no-show-signature",
          "--no-notes",
          "--no-textconv",
          "--no-abbrev-commit"};
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
  ++line_number_;
  commit_bytes_ += line.size() + 1;
  if (commit_bytes_ > kMaxCommitBytes) {
    return Status::FailedPrecondition("a commit's entry in git log is larger than " +
                                      std::to_string(kMaxCommitBytes >> 20) + " MiB");
  }
  // A line may end one state and be read again in the next (at most three times).
  while (true) {
    auto done = Handle(line);
    if (!done.ok()) return done.status();
    if (state_ == State::kCommit && commit_) SLUICE_RETURN_IF_ERROR(EndCommit());
    if (*done) return Status::Ok();
  }
}

Result<bool> GitLogParser::Handle(std::string_view line) {
  switch (state_) {
    case State::kInit:
      state_ = State::kCommit;
      return line.empty();  // one empty line may come first
    case State::kCommit:
      SLUICE_RETURN_IF_ERROR(StartCommit(line));
      state_ = State::kHeader;
      return true;
    case State::kHeader: {
      if (line.empty()) {
        state_ = State::kMessage;
        return true;
      }
      std::string_view name, value;
      if (!HeaderLine(line, &name, &value)) {
        return Status::Internal("unexpected git log output on line " +
                                std::to_string(line_number_) + " (a header expected): '" +
                                PrintableLine(line.substr(0, 80)) + "'");
      }
      auto& headers = commit_->headers;
      auto it = std::find_if(headers.begin(), headers.end(),
                             [&](const auto& h) { return h.first == name; });
      if (it == headers.end()) {
        headers.emplace_back(std::string(name), std::string(value));
      } else {
        it->second = std::string(value);
      }
      return true;
    }
    case State::kMessage: {
      if (line.empty()) {
        state_ = State::kFile;
        return true;
      }
      if (line.size() < 4 || !std::all_of(line.begin(), line.begin() + 4, PyWhitespace)) {
        state_ = State::kFile;  // no message (or its end without the empty line)
        return false;
      }
      std::string_view text = line.substr(4);
      std::optional<std::string>& message = commit_->message;
      if (message) {
        *message += '\n';
        message->append(text);
      } else {
        message.emplace(text);
      }
      Trailer(text);
      return true;
    }
    case State::kFile:
      if (line.empty()) {
        state_ = State::kCommit;
        return true;
      }
      if (ActionLine(line) || StatsLine(line)) return true;
      state_ = State::kCommit;
      return false;
  }
  return true;
}

// "commit HASH [PARENT ...] [(REFS)]".
Status GitLogParser::StartCommit(std::string_view line) {
  re2::StringPiece hash, parents, refs;
  if (!RE2::FullMatch(Piece(line), CommitPattern(), &hash, &parents, &refs)) {
    return Status::Internal("unexpected git log output on line " + std::to_string(line_number_) +
                            " (a commit expected): '" + PrintableLine(line.substr(0, 80)) + "'");
  }
  Commit c;
  c.hash = std::string(View(hash));
  c.parents = ParseList(View(parents), " ");
  c.refs = ParseList(View(refs), ",");
  commit_ = std::move(c);
  commit_bytes_ = line.size() + 1;
  guess_work_ = 0;
  return Status::Ok();
}

void GitLogParser::Trailer(std::string_view line) {
  std::string_view name, value;
  if (!HeaderLine(line, &name, &value)) return;
  std::string cap(name);
  for (size_t i = 0; i < cap.size(); ++i) {
    char c = cap[i];
    if (i == 0 && c >= 'a' && c <= 'z') cap[i] = static_cast<char>(c - 'a' + 'A');
    if (i > 0 && c >= 'A' && c <= 'Z') cap[i] = static_cast<char>(c - 'A' + 'a');
  }
  if (std::find(std::begin(kTrailers), std::end(kTrailers), cap) == std::end(kTrailers)) return;
  auto& trailers = commit_->trailers;
  auto it =
      std::find_if(trailers.begin(), trailers.end(), [&](const auto& t) { return t.first == cap; });
  if (it == trailers.end()) it = trailers.insert(trailers.end(), {cap, {}});
  it->second.emplace_back(value);
}

// ":MODE... INDEX... ACTION\tFILE[\tNEWFILE]" (git's --raw; "::" and more modes for merges).
bool GitLogParser::ActionLine(std::string_view line) {
  if (line.empty() || line[0] != ':') return false;
  re2::StringPiece colons, modes_p, indexes_p, action_p, file_p, newfile_p;
  if (!RE2::FullMatch(Piece(line), ActionPattern(), &colons, &modes_p, &indexes_p, &action_p,
                      &file_p, &newfile_p)) {
    return false;
  }
  std::string_view modes = View(modes_p), indexes = View(indexes_p), action = View(action_p),
                   file = View(file_p), newfile = View(newfile_p);
  std::string key(newfile.empty() ? file : newfile);
  File* f = FileOf(key);
  if (f == nullptr) {
    File fresh;
    fresh.from_action = true;
    f = AddFile(key, std::move(fresh));
  }
  f->modes = ParseList(modes, " ");
  f->indexes = ParseList(indexes, " ");
  f->action = std::string(action);
  f->file = std::string(file);
  f->newfile = newfile.empty() ? std::nullopt : std::optional<std::string>(newfile);
  return true;
}

// "ADDED\tREMOVED\tFILE" (git's --numstat; "-" for a binary file's counts).
bool GitLogParser::StatsLine(std::string_view line) {
  // (\d+|-)\t+(\d+|-)\t+(.+)
  auto count = [&line](size_t* i, std::string_view* out) {
    size_t at = *i;
    if (at < line.size() && line[at] == '-') {
      ++*i;
    } else {
      while (*i < line.size() && Digit(line[*i])) ++*i;
    }
    if (*i == at || *i >= line.size() || line[*i] != '\t') return false;
    *out = line.substr(at, *i - at);
    return true;
  };
  size_t i = 0;
  std::string_view counts[2], file;
  if (!count(&i, &counts[0])) return false;
  while (i < line.size() && line[i] == '\t') ++i;
  if (!count(&i, &counts[1]) || !TabsThenRest(line, i, &file)) return false;
  std::string name(file);
  if (File* f = FileOf(name)) {
    f->added = std::string(counts[0]);
    f->removed = std::string(counts[1]);
    return true;
  }
  Commit& c = *commit_;
  auto [it, fresh] = c.pending_by_name.emplace(name, c.pending.size());
  if (fresh) c.pending.emplace_back();
  File& p = c.pending[it->second];
  p.file = name;
  p.added = std::string(counts[0]);
  p.removed = std::string(counts[1]);
  return true;
}

GitLogParser::File* GitLogParser::FileOf(const std::string& key) {
  auto it = commit_->by_key.find(key);
  return it == commit_->by_key.end() ? nullptr : &commit_->files[it->second];
}

GitLogParser::File* GitLogParser::AddFile(const std::string& key, File f) {
  Commit& c = *commit_;
  c.by_key.emplace(key, c.files.size());
  c.keys.push_back(key);
  c.files.push_back(std::move(f));
  return &c.files.back();
}

// Stats lines of files no action line named: renames written "a => b" matched to the action
// lines' names (Perceval's _handle_pending_files).
void GitLogParser::SettlePending() {
  Commit& c = *commit_;
  std::vector<File> pending = std::move(c.pending);
  c.pending.clear();
  c.pending_by_name.clear();
  // The renames and copies the action lines named, with Perceval's guessing forms of their
  // names (files added below have no new name: the guess passes them by).
  std::vector<Renamed> renamed;
  for (const File& f : c.files) {
    if (f.newfile && !f.newfile->empty() && !f.file.empty()) {
      renamed.push_back({ReplaceAll(f.file, "{", ""), ReplaceAll(*f.newfile, "}", ""), *f.newfile});
    }
  }
  for (File& p : pending) {
    auto settle = [&p](File* f) {
      f->added = p.added;
      f->removed = p.removed;
    };
    if (File* f = FileOf(p.file)) {
      settle(f);
      continue;
    }
    if (p.file.find(" => ") == std::string::npos) {
      std::string key = p.file;
      AddFile(key, std::move(p));
      continue;
    }
    std::string name = NewFilePath(p.file);
    if (FileOf(name) == nullptr) {
      if (auto guessed = GuessNewName(p.file, renamed)) name = *guessed;
    }
    if (File* f = FileOf(name)) {
      settle(f);
    } else {
      AddFile(name, std::move(p));
    }
  }
}

std::optional<std::string> GitLogParser::GuessNewName(const std::string& stats_name,
                                                      const std::vector<Renamed>& renamed) {
  std::vector<std::string> parts = Split(stats_name, " => ");
  for (size_t i = 1; i < parts.size() && guess_work_ < kGuessBudget; ++i) {
    std::string before = ReplaceAll(Join(parts, 0, i, " => "), "{", "");
    std::string after = ReplaceAll(Join(parts, i, parts.size(), " => "), "}", "");
    guess_work_ += stats_name.size() / 64 + 1;
    for (const Renamed& r : renamed) {
      if (++guess_work_ > kGuessBudget) break;
      if (r.old_name.starts_with(before) && r.new_name.ends_with(after)) return r.newfile;
    }
  }
  if (FileOf(stats_name) != nullptr) return stats_name;
  return std::nullopt;
}

Status GitLogParser::EndCommit() {
  if (!commit_) return Status::Ok();
  SettlePending();
  Commit& c = *commit_;
  const std::string* committed = nullptr;
  for (const auto& [name, value] : c.headers) {
    if (name == "CommitDate") committed = &value;
  }
  auto commit_date = committed ? GitDate(*committed) : Status::InvalidArgument("none");
  if (!commit_date.ok()) {
    return Status::Internal("unexpected CommitDate in git log for commit " + c.hash + ": '" +
                            PrintableLine(committed ? *committed : "") + "'");
  }
  if (*commit_date >= from_ && (to_ == 0 || *commit_date < to_)) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    // Whatever bytes a commit holds, the item is valid UTF-8 JSON (every store takes it).
    auto str = [&w](std::string_view s) {
      std::string valid = ValidUtf8(s);
      w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
    };
    auto list = [&](const std::vector<std::string>& l) {
      w.StartArray();
      for (const std::string& s : l) str(s);
      w.EndArray();
    };
    std::string uuid = Sha1Hex(origin_ + ":" + c.hash);
    w.StartObject();
    w.Key("backend_name");
    w.String("Git");
    w.Key("backend_version");
    w.String(kBackendVersion);
    w.Key("perceval_version");
    w.String(kPercevalVersion);
    w.Key("timestamp");
    w.Double(static_cast<double>(fetched_) / 1e6);
    w.Key("origin");
    str(origin_);
    w.Key("uuid");
    str(uuid);
    w.Key("updated_on");
    w.Double(static_cast<double>(*commit_date) / 1e6);
    w.Key("classified_fields_filtered");
    w.Null();
    w.Key("category");
    w.String("commit");
    w.Key("search_fields");
    w.StartObject();
    w.Key("item_id");
    str(c.hash);
    w.EndObject();
    w.Key("tag");
    str(tag_);
    w.Key("data");
    w.StartObject();
    w.Key("commit");
    str(c.hash);
    w.Key("parents");
    list(c.parents);
    w.Key("refs");
    list(c.refs);
    for (const auto& [name, value] : c.headers) {
      str(name);
      str(value);
    }
    if (c.message) {
      w.Key("message");
      str(*c.message);
    }
    for (const auto& [name, values] : c.trailers) {
      str(name);
      list(values);
    }
    w.Key("files");
    std::vector<size_t> order(c.files.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return c.keys[a] < c.keys[b]; });
    w.StartArray();
    for (size_t i : order) {
      const File& f = c.files[i];
      w.StartObject();
      if (f.from_action) {
        w.Key("modes");
        list(f.modes);
        w.Key("indexes");
        list(f.indexes);
        w.Key("action");
        str(f.action);
      }
      w.Key("file");
      str(f.file);
      if (f.newfile) {
        w.Key("newfile");
        str(*f.newfile);
      }
      if (f.added) {
        w.Key("added");
        str(*f.added);
        w.Key("removed");
        str(*f.removed);
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.Key("offset");
    str(c.hash);
    w.EndObject();
    TaskItem item;
    item.uuid = std::move(uuid);
    item.updated_on = *commit_date;
    item.data.assign(buf.GetString(), buf.GetSize());
    item_bytes_ += item.data.size();
    items_.push_back(std::move(item));
    ++commits_;
  }
  commit_.reset();
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
