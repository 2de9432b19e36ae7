// GitBackend: `git clone --bare` / `git fetch`, then one `git log` parsed into commit items.
#include "handlers/git/git_backend.h"

#include <openssl/sha.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>
#include <random>
#include <set>

#include "core/clock.h"
#include "core/json.h"
#include "core/subprocess.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

// Fields of one commit, separated by \x1f; commits start with \x1e; --numstat lines follow.
constexpr const char* kLogFormat =
    "--format=%x1e%H%x1f%P%x1f%an <%ae>%x1f%aI%x1f%cn <%ce>%x1f%cI%x1f%B%x1f";

const std::set<std::string> kKnownArgs = {"uri",      "gitpath",      "from_date", "to_date",
                                          "branches", "latest_items", "no_update", "offset",
                                          "recovery", "base_path"};

std::string Hex(const unsigned char* d, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[d[i] >> 4];
    out += kDigits[d[i] & 15];
  }
  return out;
}

std::string Sha1Hex(const std::string& s) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return Hex(d, sizeof(d));
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \n\r\t");
  size_t e = s.find_last_not_of(" \n\r\t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

GitBackend::GitBackend(std::string archive_path, double timeout_s)
    : archive_path_(std::move(archive_path)), timeout_s_(timeout_s) {}

Status GitBackend::Validate(const std::string& args) const {
  rapidjson::Document d;
  if (Status st = ParseJson(args, &d); !st.ok()) return st.Annotate("backend_args");
  if (!d.IsObject()) return Status::InvalidArgument("backend_args: not an object");
  for (auto& m : d.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    if (!kKnownArgs.count(key)) {
      return Status::InvalidArgument("backend_args: the git backend has no argument " +
                                     JsonQuote(key));
    }
  }
  auto uri = d.FindMember("uri");
  if (uri == d.MemberEnd() || !uri->value.IsString() || uri->value.GetStringLength() == 0) {
    return Status::InvalidArgument("backend_args: the git backend needs 'uri' (a git URL or path)");
  }
  if (uri->value.GetString()[0] == '-') {
    return Status::InvalidArgument("backend_args: 'uri' must not start with '-'");
  }
  if (JsonView(uri->value).find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("backend_args: 'uri' holds a NUL byte");
  }
  for (const char* key : {"from_date", "to_date"}) {
    auto it = d.FindMember(key);
    if (it == d.MemberEnd() || it->value.IsNull()) continue;
    auto when = it->value.IsString() ? ParseLooseTime(JsonStr(it->value))
                                     : Result<int64_t>(Status::InvalidArgument("not a string"));
    if (!when.ok()) {
      return Status::InvalidArgument(std::string("backend_args: '") + key +
                                     "' must be a date like 2015-03-01 or 2015-03-01T10:00:00Z");
    }
    Status in_range = CheckTime(std::string("backend_args.") + key, *when);
    if (!in_range.ok()) return in_range;
  }
  auto br = d.FindMember("branches");
  if (br != d.MemberEnd() && !br->value.IsNull()) {
    if (!br->value.IsArray())
      return Status::InvalidArgument("backend_args: 'branches' must be a list");
    for (auto& b : br->value.GetArray()) {
      if (!b.IsString() || b.GetStringLength() == 0 || b.GetString()[0] == '-' ||
          JsonView(b).find('\0') != std::string_view::npos) {
        return Status::InvalidArgument("backend_args: 'branches' must be branch names");
      }
    }
  }
  auto nu = d.FindMember("no_update");
  if (nu != d.MemberEnd() && !nu->value.IsBool() && !nu->value.IsNull()) {
    return Status::InvalidArgument("backend_args: 'no_update' must be true or false");
  }
  return Status::Ok();
}

std::string GitBackend::ClonePath(const std::string& uri) const {
  std::string base = uri;
  while (!base.empty() && (base.back() == '/' || base.back() == '\\')) base.pop_back();
  size_t slash = base.find_last_of("/:");
  if (slash != std::string::npos) base = base.substr(slash + 1);
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".git") == 0)
    base.resize(base.size() - 4);
  std::string safe;
  for (char c : base)
    safe += (isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  if (safe.empty() || safe[0] == '.') safe = "repo" + safe;
  return archive_path_ + "/git/" + safe.substr(0, 60) + "-" + Sha1Hex(uri).substr(0, 12) + ".git";
}

Result<std::string> GitBackend::Git(const std::vector<std::string>& args,
                                    const FetchRequest& request) {
  SubprocessOptions o;
  o.argv = {"git"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  // Never ask for a password, never run helper commands named by a URL (ext::, fd::).
  o.env = {"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false",
           "GIT_ALLOW_PROTOCOL=file:git:http:https:ssh", "LC_ALL=C"};
  o.timeout_s = timeout_s_;
  o.tick = request.tick;
  auto r = RunSubprocess(o);
  if (!r.ok()) return r.status();
  if (!r->ok()) {
    return Status::Unavailable("git " + args[0] + " failed (" + r->Describe(timeout_s_) + ")");
  }
  return std::move(r->out);
}

Status GitBackend::Update(const std::string& uri, const std::string& dir,
                          const FetchRequest& request) {
  std::error_code ec;
  if (fs::exists(dir + "/HEAD", ec)) {
    request.log("git fetch " + uri);
    auto out =
        Git({"-C", dir, "fetch", "--prune", "--quiet", "origin", "+refs/heads/*:refs/heads/*"},
            request);
    return out.status();
  }
  fs::create_directories(archive_path_ + "/git", ec);
  if (ec) return Status::IOError("cannot create " + archive_path_ + "/git: " + ec.message());
  // Cloned aside, then renamed: a clone cut short never looks like a clone.
  std::string tmp = dir + ".tmp-" + std::to_string(std::random_device{}());
  request.log("git clone --bare " + uri);
  auto out = Git({"clone", "--bare", "--quiet", "--", uri, tmp}, request);
  if (!out.ok()) {
    fs::remove_all(tmp, ec);
    return out.status();
  }
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    return Status::IOError("cannot move the clone to " + dir + ": " + ec.message());
  }
  return Status::Ok();
}

Result<std::vector<TaskItem>> GitBackend::Fetch(const FetchRequest& request) {
  SLUICE_RETURN_IF_ERROR(Validate(request.args));
  rapidjson::Document d;
  SLUICE_RETURN_IF_ERROR(ParseJson(request.args, &d));
  std::string uri = JsonStr(d["uri"]);
  int64_t from = 0, to = 0;
  if (d.HasMember("from_date") && d["from_date"].IsString()) {
    from = *ParseLooseTime(JsonStr(d["from_date"]));
  }
  if (d.HasMember("to_date") && d["to_date"].IsString()) {
    to = *ParseLooseTime(JsonStr(d["to_date"]));
  }
  bool no_update = request.from_archive || (d.HasMember("no_update") && d["no_update"].IsBool() &&
                                            d["no_update"].GetBool());
  std::string dir = ClonePath(uri);
  std::shared_ptr<std::mutex> lock;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto& l = clone_locks_[dir];
    if (!l) l = std::make_shared<std::mutex>();
    lock = l;
  }
  std::lock_guard<std::mutex> clone_lock(*lock);
  std::error_code ec;
  if (no_update) {
    if (!fs::exists(dir + "/HEAD", ec)) {
      return Status::FailedPrecondition("no clone of " + uri + " in the archive (" + dir +
                                        ") to read without updating");
    }
    request.log("reading the archived clone " + dir + " without updating it");
  } else {
    SLUICE_RETURN_IF_ERROR(Update(uri, dir, request));
  }
  std::vector<std::string> args = {"-C",           dir,          "log",          "--reverse",
                                   "--topo-order", "--no-color", "--no-renames", "--numstat",
                                   kLogFormat};
  if (from != 0) {
    // git stops walking at commits older than this (as Perceval does); the exact, inclusive
    // filter is ParseGitLog's.
    std::string since = FormatTime(from);
    args.push_back("--since=" + since.substr(0, 19) + "+00:00");
  }
  auto br = d.FindMember("branches");
  if (br != d.MemberEnd() && br->value.IsArray() && br->value.Size() > 0) {
    for (auto& b : br->value.GetArray()) args.push_back("refs/heads/" + JsonStr(b));
  } else {
    args.push_back("--branches");
  }
  args.push_back("--");
  auto out = Git(args, request);
  if (!out.ok()) return out.status();
  auto items = ParseGitLog(*out, uri, from, to);
  if (items.ok()) {
    request.log("git log: " + std::to_string(items->size()) + " commits" +
                (from ? " since " + FormatTime(from) : std::string()));
  }
  return items;
}

Result<std::vector<TaskItem>> ParseGitLog(const std::string& out, const std::string& origin,
                                          int64_t from_micros, int64_t to_micros) {
  std::vector<TaskItem> items;
  for (const std::string& record : Split(out, '\x1e')) {
    if (Trim(record).empty()) continue;
    std::vector<std::string> f = Split(record, '\x1f');
    if (f.size() != 8) {
      return Status::Internal("unexpected git log output near '" + record.substr(0, 80) + "'");
    }
    auto commit_date = ParseTime(f[5]);
    auto author_date = ParseTime(f[3]);
    if (!commit_date.ok() || !author_date.ok()) {
      return Status::Internal("unexpected date in git log: '" + f[5] + "'");
    }
    if (*commit_date < from_micros || (to_micros != 0 && *commit_date >= to_micros)) continue;
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    auto str = [&w](const std::string& s) { w.String(s.c_str(), static_cast<unsigned>(s.size())); };
    w.StartObject();
    w.Key("backend_name");
    w.String("Git");
    w.Key("category");
    w.String("commit");
    w.Key("origin");
    str(origin);
    w.Key("uuid");
    std::string uuid = Sha1Hex(origin + ":" + f[0]);
    str(uuid);
    w.Key("updated_on");
    w.Double(static_cast<double>(*commit_date) / 1e6);
    w.Key("data");
    w.StartObject();
    w.Key("commit");
    str(f[0]);
    w.Key("parents");
    w.StartArray();
    for (const std::string& p : Split(f[1], ' ')) {
      if (!p.empty()) str(p);
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
    std::string message = f[6];
    while (!message.empty() && message.back() == '\n') message.pop_back();
    str(message);
    w.Key("files");
    w.StartArray();
    for (const std::string& line : Split(f[7], '\n')) {
      std::vector<std::string> cols = Split(line, '\t');
      if (cols.size() < 3) continue;
      w.StartObject();
      w.Key("file");
      str(cols[2]);
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
    item.uuid = uuid;
    item.updated_on = *commit_date;
    item.data.assign(buf.GetString(), buf.GetSize());
    items.push_back(std::move(item));
  }
  return items;
}

}  // namespace sluice
