// GitBackend: `git clone --bare` / `git fetch`, then `git log` read into commit items as it comes.
#include "handlers/git/git_backend.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>
#include <random>
#include <set>

#include "core/clock.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "handlers/git/git_log.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxTagBytes = 2048;
constexpr size_t kMaxUriBytes = 4096;  // PATH_MAX: every local path fits

const std::set<std::string> kKnownArgs = {"uri",      "gitpath",      "from_date", "to_date",
                                          "branches", "latest_items", "no_update", "offset",
                                          "recovery", "base_path",    "tag",       "ssl_verify"};

}  // namespace

GitBackend::GitBackend(std::string archive_path, double timeout_s, size_t batch_items)
    : archive_path_(std::move(archive_path)), timeout_s_(timeout_s), batch_items_(batch_items) {}

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
  // Copied into every item as its origin: a name's rules, at the length of a path.
  SLUICE_RETURN_IF_ERROR(CheckName("backend_args.uri", JsonView(uri->value), kMaxUriBytes));
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
  auto tag = d.FindMember("tag");
  if (tag != d.MemberEnd() && !tag->value.IsNull()) {
    // Copied into every item of the task: a name's rules, at a URL's length.
    if (!tag->value.IsString())
      return Status::InvalidArgument("backend_args: 'tag' must be a string");
    SLUICE_RETURN_IF_ERROR(CheckName("backend_args.tag", JsonView(tag->value), kMaxTagBytes));
  }
  for (const char* key : {"no_update", "ssl_verify"}) {
    auto it = d.FindMember(key);
    if (it != d.MemberEnd() && !it->value.IsBool() && !it->value.IsNull()) {
      return Status::InvalidArgument(std::string("backend_args: '") + key +
                                     "' must be true or false");
    }
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
                                    const FetchRequest& request,
                                    std::function<bool(std::string_view)> on_stdout) {
  SubprocessOptions o;
  o.argv = {"git"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  // Never ask for a password, never run helper commands named by a URL (ext::, fd::).
  o.env = {"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false",
           "GIT_ALLOW_PROTOCOL=file:git:http:https:ssh", "LC_ALL=C"};
  o.timeout_s = timeout_s_;
  o.tick = request.tick;
  o.on_stdout = std::move(on_stdout);
  auto r = RunSubprocess(o);
  if (!r.ok()) return r.status();
  if (!r->ok()) {
    return Status::Unavailable("git " + args[0] + " failed (" + r->Describe(timeout_s_) + ")");
  }
  return std::move(r->out);
}

Status GitBackend::Update(const std::string& uri, const std::string& dir, bool ssl_verify,
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
  // As Perceval: ssl_verify false is kept in the clone's configuration, for its fetches too.
  std::vector<std::string> clone = {"clone", "--bare", "--quiet"};
  if (!ssl_verify) clone.insert(clone.end(), {"-c", "http.sslVerify=false"});
  clone.insert(clone.end(), {"--", uri, tmp});
  auto out = Git(clone, request);
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
    auto verify = d.FindMember("ssl_verify");
    bool ssl_verify = verify == d.MemberEnd() || !verify->value.IsBool() || verify->value.GetBool();
    SLUICE_RETURN_IF_ERROR(Update(uri, dir, ssl_verify, request));
  }
  auto tag = d.FindMember("tag");
  GitLogParser parser(uri, tag != d.MemberEnd() && tag->value.IsString() ? JsonStr(tag->value) : "",
                      from, to, Clock::Real()->NowMicros());
  std::vector<std::string> args = {"-C", dir, "log", "--reverse", "--topo-order"};
  for (std::string& option : GitLogParser::LogOptions()) args.push_back(std::move(option));
  if (from != 0) {
    // git stops walking at commits older than this (as Perceval does); the exact, inclusive
    // filter is the parser's.
    std::string since = FormatTime(from);
    args.push_back("--since=" + since.substr(0, 19) + "+00:00");
  }
  auto br = d.FindMember("branches");
  if (br != d.MemberEnd() && br->value.IsArray() && br->value.Size() > 0) {
    for (auto& b : br->value.GetArray()) args.push_back("refs/heads/" + JsonStr(b));
  } else {
    for (const char* refs : {"--branches", "--tags", "--remotes=origin"}) args.push_back(refs);
  }
  args.push_back("--");
  // Read as git writes it; with request.save, stored a batch at a time.
  Status failed;
  auto out = Git(args, request, [&](std::string_view bytes) {
    failed = parser.Feed(bytes);
    if (failed.ok() && request.save &&
        (parser.items().size() >= batch_items_ || parser.item_bytes() >= kBatchBytes)) {
      std::vector<TaskItem> batch = parser.Take();
      failed = request.save(&batch);
    }
    return failed.ok();
  });
  SLUICE_RETURN_IF_ERROR(failed);
  if (!out.ok()) return out.status();
  SLUICE_RETURN_IF_ERROR(parser.Finish());
  request.log("git log: " + std::to_string(parser.commits()) + " commits" +
              (from ? " since " + FormatTime(from) : std::string()));
  return parser.Take();
}

}  // namespace sluice
