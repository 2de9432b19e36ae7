// Router: routes of the HTTP API.
#include "api/router.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <future>
#include <memory>

#include "api/submit.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/text.h"
#include "store/job_json.h"

namespace sluice::api {
namespace {

constexpr int kMaxLimit = 1000;
// Job ids a listing whose filter no index serves (kind, retried, an error code without its
// state) walks at most per page: on five million jobs `?kind=nope` read every job (1.5 s on
// SQLite) while the store reads queued behind it. The page then ends where the walk did and
// its next_cursor goes on below (a page may come short, or empty, before the last one).
constexpr int64_t kScanWindow = 100'000;

bool IndexServes(const JobFilter& f) {
  return !f.kind && (!f.error_code || f.state) && (!f.retried || (f.state && f.error_code));
}

Result<int64_t> ParseInt(const std::string& s, const char* what) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return Status::InvalidArgument(std::string(what) + " must be an integer, not '" + s + "'");
  }
  return v;
}

}  // namespace

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}

namespace {

// An IPv4 address in 127.0.0.0/8, ::1, or an IPv4-mapped 127.x address.
bool IsLoopbackAddress(const std::string& text) {
  unsigned char addr[sizeof(in6_addr)];
  if (inet_pton(AF_INET, text.c_str(), addr) == 1) return addr[0] == 127;
  if (inet_pton(AF_INET6, text.c_str(), addr) != 1) return false;
  static const unsigned char kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(addr, kOne, 16) == 0 ||
         (std::memcmp(addr, kMapped, 12) == 0 && addr[12] == 127);
}

}  // namespace

bool IsLoopback(const std::string& host) { return host == "localhost" || IsLoopbackAddress(host); }

bool IsLoopbackName(std::string_view host) {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    size_t end = name.find(']');
    if (end == std::string_view::npos) return false;
    std::string_view rest = name.substr(end + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    name = name.substr(1, end - 1);
  } else if (size_t colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!lower.empty() && lower.back() == '.') lower.pop_back();
  // Browsers resolve localhost and every name under it to loopback themselves (RFC 6761).
  const std::string kLocal = ".localhost";
  if (lower == "localhost" ||
      (lower.size() > kLocal.size() &&
       lower.compare(lower.size() - kLocal.size(), kLocal.size(), kLocal) == 0)) {
    return true;
  }
  return IsLoopbackAddress(lower);
}

int Router::Denied(const HttpRequest& r) const {
  if (deps_.loopback_names_only) {
    // A client that names no host (HTTP/1.0) is no browser: browsers always send Host.
    if (auto host = r.Header("host"); host && !IsLoopbackName(*host)) return 421;
  }
  bool safe = r.method == "GET" || r.method == "HEAD";
  // A browser says where a request comes from: a page of another origin may not change
  // anything here, token or not (a form on any web site can POST to 127.0.0.1).
  if (!safe) {
    if (auto origin = r.Header("origin")) {
      // Behind a proxy the page's host may come as X-Forwarded-Host (a page elsewhere cannot
      // add that header to a form's request, nor to a fetch without this server's consent).
      auto ours = [&](const std::optional<std::string>& host) {
        return host && (*origin == "http://" + *host || *origin == "https://" + *host);
      };
      if (!ours(r.Header("host")) && !ours(r.Header("x-forwarded-host"))) return 403;
    }
  }
  if (deps_.token.empty()) return 0;
  auto auth = r.Header("authorization");
  const std::string kBearer = "Bearer ";
  if (auth && auth->compare(0, kBearer.size(), kBearer) == 0) {
    return ConstantTimeEquals(auth->substr(kBearer.size()), deps_.token) ? 0 : 401;
  }
  auto session = sessions_->FromCookie(r.Header("cookie").value_or(""));
  if (!session) return 401;
  if (safe) return 0;
  // A cookie alone is what a forged cross-site request carries too.
  return ConstantTimeEquals(r.Header("x-csrf-token").value_or(""), session->csrf) ? 0 : 403;
}

void Router::HandleAsync(const HttpRequest& r, Reply reply) const {
  // Every JSON body leaves as UTF-8, whatever bytes a file name or a stored string holds
  // (input is checked, but names on disk are not ours to choose).
  Reply checked = [reply = std::move(reply)](HttpResponse resp) {
    if (!resp.stream && resp.content_type.rfind("application/json", 0) == 0 &&
        !IsValidUtf8(resp.body)) {
      resp.body = ValidUtf8(resp.body);
    }
    reply(std::move(resp));
  };
  if (r.path == "/api/v1/jobs" && r.method == "POST" && Authorized(r)) {
    return SubmitJob(r, std::move(checked));
  }
  if (r.path == "/api/v1/failures/retry" && r.method == "POST" && Authorized(r)) {
    std::lock_guard<std::mutex> lock(background_->mu);
    if (background_->busy) {
      return checked(HttpResponse::Error(409, "busy", "a retry of a whole code is running"));
    }
    if (background_->thread.joinable()) background_->thread.join();  // the last one, ended
    background_->busy = true;
    background_->thread = std::thread([this, r, checked = std::move(checked)] {
      HttpResponse resp = Failures(r);
      {
        std::lock_guard<std::mutex> done(background_->mu);
        background_->busy = false;
      }
      checked(std::move(resp));
    });
    return;
  }
  // Refused ones are answered at once: they take no place among the waiting calls.
  if (IsTaskPath(r.path) && Authorized(r)) {
    return PostToLane(task_lane_.get(), "task API", r, std::move(checked));
  }
  if (r.path == "/api/v1/promote" && r.method == "POST" && Authorized(r)) {
    return PostToLane(promote_lane_.get(), "promote", r, std::move(checked));
  }
  if (IsStoreRead(r) && Authorized(r)) {
    return PostToLane(read_lane_.get(), "read", r, std::move(checked));
  }
  checked(Route(r));
}

bool Router::IsStoreRead(const HttpRequest& r) {
  if (r.method != "GET" && r.method != "HEAD") return false;
  if (r.path == "/metrics" || r.path == "/readyz") return true;
  if (r.path.rfind("/api/v1/", 0) != 0) return false;
  if (r.path == "/api/v1/events" || r.path == "/api/v1/session") return false;
  // A job's log may be followed (a stream): made where streams are made.
  return !(r.path.size() > 4 && r.path.compare(r.path.size() - 4, 4, "/log") == 0);
}

void Router::PostToLane(SerialLane* lane, const char* what, const HttpRequest& r,
                        Reply reply) const {
  auto held = std::make_shared<Reply>(std::move(reply));
  std::function<void()> call = [this, r, held] { (*held)(Route(r)); };
  if (lane->Post(call)) return;
  HttpResponse busy = HttpResponse::Error(
      503, "unavailable", std::string("too many ") + what + " calls are waiting; try again");
  busy.headers.emplace_back("Retry-After", "1");
  (*held)(std::move(busy));
}

Router::~Router() {
  std::thread running;
  {
    std::lock_guard<std::mutex> lock(background_->mu);
    running = std::move(background_->thread);
  }
  if (running.joinable()) running.join();
  task_lane_.reset();  // every waiting task call answered
  promote_lane_.reset();
  read_lane_.reset();
}

HttpResponse Router::Handle(const HttpRequest& r) const {
  auto answer = std::make_shared<std::promise<HttpResponse>>();
  std::future<HttpResponse> done = answer->get_future();
  HandleAsync(r, [answer](HttpResponse resp) { answer->set_value(std::move(resp)); });
  return done.get();
}

HttpResponse Router::Route(const HttpRequest& r) const {
  if (r.path == "/healthz") {
    if (r.method != "GET" && r.method != "HEAD") {
      return HttpResponse::Error(405, "method_not_allowed", "use GET");
    }
    return HttpResponse::Json(200, R"({"status":"ok"})");
  }
  if (IsWebPath(r.path)) return Web(r);
  if (int denied = Denied(r)) {
    if (denied == 421) {
      return HttpResponse::Error(
          421, "misdirected_request",
          "this server has no API token, so it answers only requests addressed to a loopback "
          "name (localhost, 127.0.0.1, [::1]), not '" +
              PrintableLine(r.Header("host").value_or("")) +
              "' (a web page can rebind any name to 127.0.0.1); call it by one of those, or give "
              "it --api-token-file");
    }
    if (denied == 403) {
      return HttpResponse::Error(403, "csrf",
                                 "a state-changing call must come from this server's own page "
                                 "(Origin) and, in a session, carry its X-CSRF-Token");
    }
    HttpResponse resp = HttpResponse::Error(401, "unauthorized",
                                            "this server needs 'Authorization: Bearer <token>'");
    resp.headers.emplace_back("WWW-Authenticate", "Bearer");
    return resp;
  }
  // A filter is text for every store: a value that is not UTF-8 or holds a NUL (which
  // PostgreSQL cannot hold, and its client would cut the value short at) is refused here,
  // the same on every store, rather than matched as whatever the store makes of it.
  for (const auto& [name, value] : r.query) {
    if (!IsValidUtf8(value) || value.find('\0') != std::string::npos) {
      return HttpResponse::Error(
          400, "invalid_argument",
          "query parameter '" + name + "' must be UTF-8 text without NUL bytes");
    }
  }
  const std::string kJobs = "/api/v1/jobs";
  bool known = r.path == "/readyz" || r.path == "/metrics" || r.path == kJobs ||
               r.path == "/api/v1/queues" || r.path == "/api/v1/spools" ||
               r.path == "/api/v1/events" || r.path == "/api/v1/priority" ||
               r.path == "/api/v1/promote" || r.path.rfind(kJobs + "/", 0) == 0 ||
               r.path == "/api/v1/overview" || r.path == "/api/v1/failures" ||
               r.path == "/api/v1/failures/retry";
  if (IsTaskPath(r.path)) return Tasks(r);
  if (!known) return HttpResponse::Error(404, "not_found", "no route for " + r.path);
  if (r.path == "/api/v1/failures" || r.path == "/api/v1/failures/retry") return Failures(r);
  if (r.path == "/api/v1/priority" || r.path == "/api/v1/promote") {
    if (r.method != "POST") return HttpResponse::Error(405, "method_not_allowed", "use POST");
    return r.path == "/api/v1/priority" ? PriorityByName(r) : Promote(r);
  }
  if (r.path.rfind(kJobs + "/", 0) == 0) {
    std::string rest = r.path.substr(kJobs.size() + 1);
    size_t slash = rest.find('/');
    if (slash != std::string::npos) {
      std::string action = rest.substr(slash + 1);
      if (action == "log") {
        if (r.method != "GET") return HttpResponse::Error(405, "method_not_allowed", "use GET");
        auto id = ParseInt(rest.substr(0, slash), "job id");
        if (!id.ok())
          return HttpResponse::Error(404, "not_found", "no job " + rest.substr(0, slash));
        return JobLog(*id, r);
      }
      if (action != "cancel" && action != "priority" && action != "retry") {
        return HttpResponse::Error(404, "not_found", "no route for " + r.path);
      }
      if (r.method != "POST") return HttpResponse::Error(405, "method_not_allowed", "use POST");
      return JobAction(rest.substr(0, slash), action);
    }
  }
  if (r.method != "GET" && r.method != "HEAD") {
    return HttpResponse::Error(405, "method_not_allowed", r.method + " is not served here");
  }
  if (r.path == "/readyz") return Ready();
  if (r.path == "/metrics") {
    HttpResponse resp;
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp.body = deps_.metrics ? deps_.metrics() : "";
    return resp;
  }
  if (r.path == kJobs) return ListJobs(r);
  if (r.path == "/api/v1/queues") return Queues();
  if (r.path == "/api/v1/events") return Events(r);
  if (r.path == "/api/v1/spools") return Spools();
  if (r.path == "/api/v1/overview") return Overview();
  std::string id = r.path.substr(kJobs.size() + 1);
  if (id.empty() || id.find('/') != std::string::npos) {
    return HttpResponse::Error(404, "not_found", "no route for " + r.path);
  }
  return GetJob(id);
}

HttpResponse Router::Ready() const {
  if (deps_.health) {
    Status st = deps_.health();
    if (!st.ok()) return HttpResponse::Error(503, "not_ready", st.message());
  }
  // The store answers a read: the newest job (a count by state here read every job's index
  // entry, 70 ms a probe on a store of a million jobs).
  JobFilter newest;
  newest.limit = 1;
  auto answer = deps_.store->ListJobs(newest);
  if (!answer.ok()) return HttpResponse::Error(503, "not_ready", answer.status().message());
  return HttpResponse::Json(200, R"({"status":"ready"})");
}

HttpResponse Router::ListJobs(const HttpRequest& r) const {
  JobFilter f;
  f.limit = 100;
  if (auto s = r.Query("state"); s && !s->empty()) {
    auto state = ParseState(*s);
    if (!state.ok()) return HttpResponse::FromStatus(state.status());
    f.state = *state;
  }
  if (auto q = r.Query("queue"); q && !q->empty()) f.queue = *q;
  if (auto k = r.Query("kind"); k && !k->empty()) f.kind = *k;
  if (auto n = r.Query("name"); n && !n->empty()) f.name = *n;
  if (auto s = r.Query("spool")) f.spool = *s;  // "" : jobs sent over HTTP
  if (auto e = r.Query("error"); e && !e->empty()) f.error_code = *e;
  if (auto t = r.Query("retried"); t && !t->empty()) {
    if (*t != "0" && *t != "1" && *t != "true" && *t != "false") {
      return HttpResponse::Error(400, "invalid_argument", "retried must be 0 or 1");
    }
    f.retried = *t == "1" || *t == "true";
  }
  if (auto l = r.Query("limit")) {
    auto v = ParseInt(*l, "limit");
    if (!v.ok()) return HttpResponse::FromStatus(v.status());
    if (*v < 1 || *v > kMaxLimit) {
      return HttpResponse::Error(400, "invalid_argument",
                                 "limit must be 1 to " + std::to_string(kMaxLimit));
    }
    f.limit = static_cast<int>(*v);
  }
  if (auto c = r.Query("cursor"); c && !c->empty()) {
    auto v = ParseInt(*c, "cursor");
    if (!v.ok() || *v < 1) {
      return HttpResponse::Error(400, "invalid_argument", "cursor is not one this server gave");
    }
    f.before_id = *v;
  }
  if (!IndexServes(f)) {
    int64_t top = f.before_id;
    if (top == 0) {
      JobFilter newest_only;
      newest_only.limit = 1;
      auto newest = deps_.store->ListJobs(newest_only);
      if (!newest.ok()) return HttpResponse::FromStatus(newest.status());
      top = newest->empty() ? 0 : newest->front().id + 1;
    }
    if (top > kScanWindow + 1) f.min_id = top - kScanWindow;
  }
  auto jobs = deps_.store->ListJobs(f);
  if (!jobs.ok()) return HttpResponse::FromStatus(jobs.status());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("jobs");
  w.StartArray();
  for (const Job& j : *jobs) WriteJobJson(j, &w);
  w.EndArray();
  w.Key("next_cursor");
  if (static_cast<int>(jobs->size()) == f.limit) {
    w.String(std::to_string(jobs->back().id));
  } else if (f.min_id > 0) {
    w.String(std::to_string(f.min_id));  // the walk stopped there; older jobs remain
  } else {
    w.Null();
  }
  w.EndObject();
  return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
}

void Router::SubmitJob(const HttpRequest& r, Reply reply) const {
  if (!deps_.submit) {
    return reply(HttpResponse::Error(503, "unavailable", "no engine takes jobs here"));
  }
  auto parsed = ParseSubmission(r.body);
  if (auto* error = std::get_if<HttpResponse>(&parsed)) return reply(*error);
  deps_.submit(std::get<Job>(std::move(parsed)), [reply = std::move(reply)](
                                                     Result<std::pair<Job, bool>> submitted) {
    if (!submitted.ok()) {
      if (submitted.status().code() == Code::kInvalidArgument) {
        return reply(HttpResponse::Error(422, "invalid_request", submitted.status().message()));
      }
      HttpResponse resp = HttpResponse::FromStatus(submitted.status());
      // Full (--max-api-jobs, --max-api-bytes) or stopping: worth asking again soon.
      if (resp.status == 503) resp.headers.emplace_back("Retry-After", "1");
      return reply(std::move(resp));
    }
    HttpResponse resp =
        HttpResponse::Json(submitted->second ? 201 : 200, JobJson(submitted->first));
    resp.headers.emplace_back("Location", "/api/v1/jobs/" + std::to_string(submitted->first.id));
    reply(std::move(resp));
  });
}

HttpResponse Router::JobAction(const std::string& id, const std::string& action) const {
  auto v = ParseInt(id, "job id");
  if (!v.ok()) return HttpResponse::Error(404, "not_found", "no job " + id);
  if (action == "retry") return RetryJob(*v);
  const auto& fn = action == "cancel" ? deps_.cancel : deps_.prioritize;
  if (!fn) return HttpResponse::Error(503, "unavailable", "no engine here");
  auto job = fn(*v);
  if (!job.ok()) return HttpResponse::FromStatus(job.status());
  return HttpResponse::Json(200, JobJson(*job));
}

HttpResponse Router::RetryJob(int64_t id) const {
  if (!deps_.retry) return HttpResponse::Error(503, "unavailable", "no engine here");
  std::vector<bool> as_new_file;
  auto done = deps_.retry({id}, &as_new_file, 0);  // on the I/O thread: never waits
  const Result<Job>& job = done.front();
  if (!job.ok()) return HttpResponse::FromStatus(job.status());
  if (!as_new_file.front()) return HttpResponse::Json(200, JobJson(*job));
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("retried");
  WriteJobJson(*job, &w);
  w.Key("message");
  w.String(("the file " + job->name + " is back in the spool and runs as a new job"));
  w.EndObject();
  return HttpResponse::Json(202, std::string(buf.GetString(), buf.GetSize()));
}

HttpResponse Router::GetJob(const std::string& id) const {
  auto v = ParseInt(id, "job id");
  if (!v.ok()) return HttpResponse::Error(404, "not_found", "no job " + id);
  auto job = deps_.store->GetJob(*v);
  if (!job.ok()) return HttpResponse::FromStatus(job.status());
  // The job with its history: every state change and log line still kept.
  EventFilter f;
  f.job_id = *v;
  f.limit = 1000;
  auto events = deps_.store->ListEvents(f);
  if (!events.ok()) return HttpResponse::FromStatus(events.status());
  std::string body = JobJson(*job);
  body.pop_back();  // the closing brace: the events go inside
  if (job->spool.empty()) {
    // A job sent over HTTP has no file to look at: its input's size and its beginning.
    auto payload = deps_.store->JobPayload(*v);
    if (payload.ok()) {
      constexpr size_t kPreview = 2000;
      size_t cut = std::min(payload->size(), kPreview);
      while (cut > 0 && cut < payload->size() && ((*payload)[cut] & 0xC0) == 0x80) --cut;
      body += ",\"payload_bytes\":" + std::to_string(payload->size()) +
              ",\"payload_preview\":" + JsonQuote(std::string_view(*payload).substr(0, cut));
    }
  }
  body += ",\"events\":[";
  for (size_t i = 0; i < events->size(); ++i) {
    const Event& e = (*events)[i];
    body += i ? ",{" : "{";
    body += "\"id\":" + std::to_string(e.id) + ",\"ts\":\"" + FormatTime(e.ts) + "\",\"type\":\"" +
            e.type + "\",\"data\":" + e.data + "}";
  }
  body += "]}";
  return HttpResponse::Json(200, std::move(body));
}

HttpResponse Router::Queues() const {
  auto counts = deps_.store->CountJobsByQueue();
  if (!counts.ok()) return HttpResponse::FromStatus(counts.status());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("queues");
  w.StartArray();
  std::string current;
  bool open = false;
  for (const auto& [key, n] : *counts) {
    if (!open || key.first != current) {
      if (open) {
        w.EndObject();
        w.EndObject();
      }
      current = key.first;
      open = true;
      w.StartObject();
      w.Key("name");
      w.String(current);
      w.Key("jobs");
      w.StartObject();
    }
    w.Key(key.second.data(), static_cast<rapidjson::SizeType>(key.second.size()));
    w.Int64(n);
  }
  if (open) {
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
}

void Router::WriteSpools(rapidjson::Writer<rapidjson::StringBuffer>* w) const {
  w->StartArray();
  for (const SpoolInfo& s : deps_.spools ? deps_.spools() : std::vector<SpoolInfo>{}) {
    w->StartObject();
    w->Key("name");
    w->String(s.name);
    w->Key("layout");
    w->String(s.layout);
    w->Key("path");
    w->String(s.path);
    w->Key("kind");
    w->String(s.kind);
    w->Key("backlog");
    w->Uint64(s.backlog);
    w->Key("succeeded");
    w->Uint64(s.succeeded);
    w->Key("failed");
    w->Uint64(s.failed);
    w->EndObject();
  }
  w->EndArray();
}

HttpResponse Router::Spools() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("spools");
  WriteSpools(&w);
  w.EndObject();
  return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
}

}  // namespace sluice::api
