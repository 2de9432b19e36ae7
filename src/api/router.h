// Router: the HTTP API's routes, from a parsed request to a response. No sockets here.
//
//   GET /healthz               liveness (no token needed)
//   GET /readyz                200 when the engine runs and the store answers, else 503
//   POST /api/v1/jobs          submit {kind, queue?, payload, priority?, max_attempts?, run_at?,
//                              idempotency_key?}: 201 with the job (200 when the key was used)
//   GET /api/v1/jobs           ?state=&queue=&kind=&spool=&name=&error=&cursor=&limit= newest
//                              first, paginated
//   GET /api/v1/jobs/{id}      one job
//   POST /api/v1/jobs/{id}/cancel     cancel a waiting job (409 when running or ended)
//   POST /api/v1/jobs/{id}/priority   run a waiting job next (a running one is returned as is)
//   POST /api/v1/jobs/{id}/retry      run a failed or cancelled job again
//   GET /api/v1/jobs/{id}/log  the job's log as text; ?follow=1 streams it to its end
//   POST /api/v1/priority      {"name": FILE}: a spool or deferred file, or its job, runs next
//   POST /api/v1/promote       {"name": FILE} or {"all": true}: deferred files into the spool
//   GET /api/v1/events         Server-Sent Events ?job=&queue=&kind=&type=, resumable with
//                              Last-Event-ID (or ?after=)
//   GET /api/v1/queues         job counts by queue and state
//   GET /api/v1/spools         each spool: path, kind, backlog, succeeded, failed
//   GET /api/v1/overview       queues (counts, oldest waiting), spools, top failure codes, jobs
//                              ended per minute (15 min), leases: the dashboard's first view
//   GET /api/v1/failures       failed jobs by error code, with the README's advice
//   POST /api/v1/failures/retry   {"code": C}: every failed job of that code runs again
//   GET /metrics               Prometheus text format
//   POST /add, /remove, /reschedule; GET /tasks, /task/{id}, /job/{id}: King Arthur's task
//                              API (task_routes.cc)
//
//   GET /                      the dashboard (web/, compiled in); GET /ui/… its files
//   GET|POST|DELETE /api/v1/session   the browser's session (api/sessions.h)
//
// With a token set, every request but /healthz, the dashboard's files and /api/v1/session
// needs "Authorization: Bearer <token>" (compared in constant time) or a browser session's
// cookie, with its X-CSRF-Token on anything but GET and HEAD. Errors are JSON {"error": {"code",
// "message"}}. Thread safety: Handle() may be called from many threads.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/http_types.h"
#include "api/sessions.h"
#include "core/serial_lane.h"
#include "engine/event_hub.h"
#include "engine/task_scheduler.h"
#include "store/store.h"

namespace sluice::api {

struct SpoolInfo {
  std::string path;
  std::string kind;
  size_t backlog = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  std::string name;
  std::string layout;
};

struct RouterDeps {
  Store* store = nullptr;
  std::function<std::vector<SpoolInfo>()> spools;
  // OK when the daemon can take work; else why not (/readyz answers 503 with it).
  std::function<Status()> health;
  std::function<std::string()> metrics;  // the Prometheus text of GET /metrics
  // Registers a job and calls back, from any thread, with its stored form and whether it was
  // created (false: an idempotent repeat).
  using SubmitDone = std::function<void(Result<std::pair<Job, bool>>)>;
  std::function<void(Job, SubmitDone)> submit;
  // POST /api/v1/jobs/{id}/cancel and /priority.
  std::function<Result<Job>(int64_t)> cancel;
  std::function<Result<Job>(int64_t)> prioritize;
  // POST /api/v1/jobs/{id}/retry and /api/v1/failures/retry: each of `ids` runs again, in
  // order; (*as_new_file)[i]: a spool file went back and runs as a new job. The moves of spool
  // files are made durable, and recorded on their jobs, together before it returns. A file
  // not in failed/ yet (its job has just failed) is waited for up to `wait_ms` in all.
  std::function<std::vector<Result<Job>>(const std::vector<int64_t>& ids,
                                         std::vector<bool>* as_new_file, int wait_ms)>
      retry;
  // POST /api/v1/priority: the job (id 0 while not registered yet) and what was done.
  std::function<Result<std::pair<Job, std::string>>(const std::string& name)> prioritize_name;
  std::function<Result<Job>(const std::string& name)> promote;
  std::function<std::vector<std::string>()> promote_all;
  TaskScheduler* tasks = nullptr;  // recurring tasks; null: the task API answers 503
  EventHub* hub = nullptr;         // live events; null: no /api/v1/events
  size_t sse_buffer = 10000;       // events queued per slow reader before it is told it lagged
  // Streams (SSE and followed logs) open at once; one more is answered 503. Each holds a
  // connection, a subscription and up to sse_buffer queued events.
  size_t max_streams = 1000;
  std::string token;  // empty: no authentication
  // No token, on a loopback address: only requests addressed to a loopback name are answered.
  // A page elsewhere can rebind its own name to 127.0.0.1 and call this server as that name
  // (DNS rebinding); its requests then carry that name as Host, and its own Origin.
  bool loopback_names_only = false;
};

class Router {
 public:
  using Reply = std::function<void(HttpResponse)>;
  explicit Router(RouterDeps deps) : deps_(std::move(deps)) {}
  ~Router();
  // Answers `request` through `reply`: at once, or later from another thread for a route
  // that waits on a commit (POST /api/v1/jobs).
  void HandleAsync(const HttpRequest& request, Reply reply) const;
  // The same, waiting for the answer.
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  // 0 when the request may go on (no token set, its bearer token, or a browser session with
  // the session's CSRF token on a state-changing call); else 401 or 403.
  // 0, or the status a request is refused with: 401 (no or wrong token), 403 (another
  // origin's page, or a session's call without its CSRF token), 421 (a Host that is not a
  // loopback name where only those are answered).
  int Denied(const HttpRequest& request) const;
  bool Authorized(const HttpRequest& request) const { return Denied(request) == 0; }
  // web_routes.cc: the dashboard's files and /api/v1/session.
  HttpResponse Web(const HttpRequest& request) const;
  HttpResponse Session(const HttpRequest& request) const;
  HttpResponse ListJobs(const HttpRequest& request) const;
  HttpResponse Route(const HttpRequest& request) const;
  void SubmitJob(const HttpRequest& request, Reply reply) const;
  HttpResponse GetJob(const std::string& id) const;
  HttpResponse RetryJob(int64_t id) const;
  // spool_routes.cc
  HttpResponse PriorityByName(const HttpRequest& request) const;
  HttpResponse Promote(const HttpRequest& request) const;
  // task_routes.cc
  HttpResponse Tasks(const HttpRequest& request) const;
  // events_routes.cc
  HttpResponse Events(const HttpRequest& request) const;
  HttpResponse JobLog(int64_t id, const HttpRequest& request) const;
  HttpResponse JobAction(const std::string& id, const std::string& action) const;
  HttpResponse Queues() const;
  // overview_routes.cc
  HttpResponse Overview() const;
  HttpResponse Failures(const HttpRequest& request) const;
  HttpResponse Spools() const;
  // [{name, layout, path, kind, backlog, succeeded, failed}, …] (GET /api/v1/spools, overview).
  void WriteSpools(rapidjson::Writer<rapidjson::StringBuffer>* w) const;
  HttpResponse Ready() const;
  // A stream response for `make()`'s body, counted against max_streams: 503 at the limit.
  HttpResponse Streamed(HttpResponse head,
                        const std::function<std::shared_ptr<BodyStream>()>& make) const;

  RouterDeps deps_;
  std::shared_ptr<std::atomic<size_t>> open_streams_ = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<Sessions> sessions_ = std::make_shared<Sessions>();
  // POST /api/v1/failures/retry runs here, one at a time, off the I/O thread: thousands of
  // retries (a rename and a directory fsync each for spool files) would stall every
  // connection and event stream.
  struct Background {
    std::mutex mu;
    std::thread thread;
    bool busy = false;
  };
  std::unique_ptr<Background> background_ = std::make_unique<Background>();
  // The task API's calls run here, one at a time in arrival order, off the I/O thread: one
  // call may store, remove or list thousands of tasks. At most kMaxWaitingCalls wait on each
  // lane (503 beyond).
  static constexpr size_t kMaxWaitingCalls = 1024;
  std::unique_ptr<SerialLane> task_lane_ = std::make_unique<SerialLane>(kMaxWaitingCalls);
  // POST /api/v1/promote runs here, the same way: {"all": true} moves every deferred file
  // (5,000 took seconds), which on the I/O thread stalled every connection and stream.
  std::unique_ptr<SerialLane> promote_lane_ = std::make_unique<SerialLane>(kMaxWaitingCalls);
  // GETs answered from the store run here, in arrival order: the store reads one at a time
  // anyway, and on the I/O thread a count over a million jobs (50-80 ms) or a reconnect to
  // an unreachable PostgreSQL (its connect_timeout) held every connection and event stream.
  std::unique_ptr<SerialLane> read_lane_ = std::make_unique<SerialLane>(kMaxWaitingCalls);
  // Whether `request` is such a GET (/metrics, /readyz, /api/v1/… but event streams, logs
  // and the session).
  static bool IsStoreRead(const HttpRequest& request);
  // Runs Route(request) on `lane`; 503 (Retry-After: 1) when too many calls wait there.
  void PostToLane(SerialLane* lane, const char* what, const HttpRequest& request,
                  Reply reply) const;
};

// Whether `path` is one of the task API's (task_routes.cc).
bool IsTaskPath(const std::string& path);
// Whether `path` is the dashboard's or /api/v1/session (web_routes.cc): no token needed.
bool IsWebPath(const std::string& path);

// Whether `a` equals `b`, in time that depends only on their lengths' digests.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

// Whether an address the server may listen on is loopback: localhost, 127.0.0.0/8, ::1.
bool IsLoopback(const std::string& host);

// Whether a Host header names this machine's loopback: localhost and names under it, 127.0.0.0/8,
// [::1] (a port may follow).
bool IsLoopbackName(std::string_view host);

}  // namespace sluice::api
