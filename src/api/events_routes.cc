// Router: GET /api/v1/events (SSE) and GET /api/v1/jobs/{id}/log.
#include <algorithm>
#include <charconv>

#include "api/event_streams.h"
#include "api/router.h"
#include "core/text.h"
#include "store/event.h"

namespace sluice::api {
namespace {

Result<int64_t> ParseId(const std::string& s, const char* what) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) {
    return Status::InvalidArgument(std::string(what) + " must be a non-negative integer, not '" +
                                   s + "'");
  }
  return v;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

HttpResponse Router::Events(const HttpRequest& r) const {
  if (deps_.hub == nullptr) return HttpResponse::Error(503, "unavailable", "no live events here");
  EventFilter f;
  if (auto job = r.Query("job"); job && !job->empty()) {
    auto v = ParseId(*job, "job");
    if (!v.ok()) return HttpResponse::FromStatus(v.status());
    f.job_id = *v;
  }
  if (auto q = r.Query("queue"); q && !q->empty()) f.queue = *q;
  if (auto k = r.Query("kind"); k && !k->empty()) f.kind = *k;
  if (auto t = r.Query("type"); t && !t->empty()) {
    f.types = SplitComma(*t);
    // A misspelt type would give a stream that never says anything.
    const std::vector<std::string>& known = EventTypes();
    for (const std::string& type : f.types) {
      if (std::find(known.begin(), known.end(), type) != known.end()) continue;
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      return HttpResponse::Error(400, "invalid_argument",
                                 "unknown event type '" + PrintableLine(type) + "': " + list);
    }
  }
  // Resume point: Last-Event-ID (what a browser's EventSource sends) or ?after=. Without
  // one, a job's stream starts at its first event; the whole stream starts live.
  std::optional<std::string> after = r.Header("last-event-id");
  if (!after || after->empty()) after = r.Query("after");
  bool live_only = f.job_id == 0;
  if (after && !after->empty()) {
    auto v = ParseId(*after, "Last-Event-ID");
    if (!v.ok()) return HttpResponse::FromStatus(v.status());
    f.after_id = *v;
    live_only = false;
  }
  HttpResponse resp;
  resp.content_type = "text/event-stream";
  resp.headers.emplace_back("Cache-Control", "no-cache");
  resp.headers.emplace_back("X-Accel-Buffering", "no");
  return Streamed(std::move(resp), [&]() -> std::shared_ptr<BodyStream> {
    auto feed = std::make_unique<EventFeed>(deps_.store, deps_.hub, f, deps_.sse_buffer, live_only);
    return std::make_shared<SseStream>(std::move(feed), ": keepalive\n\n");
  });
}

namespace {

// A stream that gives its slot back when the connection ends.
class CountedStream : public BodyStream {
 public:
  CountedStream(std::shared_ptr<BodyStream> inner, std::shared_ptr<std::atomic<size_t>> open)
      : inner_(std::move(inner)), open_(std::move(open)) {}
  ~CountedStream() override { open_->fetch_sub(1); }
  void Start(std::function<void()> wake) override { inner_->Start(std::move(wake)); }
  bool Read(std::vector<Chunk>* out) override { return inner_->Read(out); }
  bool HasMore() const override { return inner_->HasMore(); }
  std::string Keepalive() const override { return inner_->Keepalive(); }

 private:
  std::shared_ptr<BodyStream> inner_;
  std::shared_ptr<std::atomic<size_t>> open_;
};

}  // namespace

HttpResponse Router::Streamed(HttpResponse head,
                              const std::function<std::shared_ptr<BodyStream>()>& make) const {
  size_t open = open_streams_->fetch_add(1);
  if (open >= deps_.max_streams) {
    open_streams_->fetch_sub(1);
    HttpResponse busy =
        HttpResponse::Error(503, "too_many_streams",
                            "this server has " + std::to_string(deps_.max_streams) +
                                " event streams open already (--max-sse-clients); try again later");
    busy.headers.emplace_back("Retry-After", "5");
    return busy;
  }
  head.stream = std::make_shared<CountedStream>(make(), open_streams_);
  return head;
}

HttpResponse Router::JobLog(int64_t id, const HttpRequest& r) const {
  auto job = deps_.store->GetJob(id);
  if (!job.ok()) return HttpResponse::FromStatus(job.status());
  EventFilter f;
  f.job_id = id;
  HttpResponse resp;
  resp.content_type = "text/plain; charset=utf-8";
  auto follow = r.Query("follow");
  if (follow && (*follow == "1" || *follow == "true")) {
    if (deps_.hub == nullptr) return HttpResponse::Error(503, "unavailable", "no live events here");
    resp.headers.emplace_back("Cache-Control", "no-cache");
    resp.headers.emplace_back("X-Accel-Buffering", "no");
    return Streamed(std::move(resp), [&]() -> std::shared_ptr<BodyStream> {
      auto feed = std::make_unique<EventFeed>(deps_.store, deps_.hub, f, deps_.sse_buffer, false);
      return std::make_shared<JobLogStream>(std::move(feed), id);
    });
  }
  // What is stored now; the end line only when the job has ended.
  f.limit = 5000;
  while (true) {
    auto events = deps_.store->ListEvents(f);
    if (!events.ok()) return HttpResponse::FromStatus(events.status());
    for (const Event& e : *events) resp.body += LogLine(e);
    if (static_cast<int>(events->size()) < f.limit) break;
    f.after_id = events->back().id;
  }
  auto now = deps_.store->GetJob(id);
  if (now.ok() && IsFinal(now->state)) resp.body += EndOfLog(id, StateName(now->state));
  return resp;
}

}  // namespace sluice::api
