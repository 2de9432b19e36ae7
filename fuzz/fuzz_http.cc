// Fuzz target: bytes off a socket through the HTTP request parser (Beast, as the server
// uses it), the request target's decoding, and the router with a real SQLite store behind it;
// the bodies also through the job and task parsers.
//
// Invariants: never a crash; every JSON answer is valid UTF-8 and parses as JSON; an error
// answer is 4xx/5xx with {"error": {"code", "message"}}.
#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "api/router.h"
#include "api/submit.h"
#include "api/task_json.h"
#include "core/json.h"
#include "core/text.h"
#include "engine/event_hub.h"
#include "engine/task_scheduler.h"
#include "fuzz/check.h"
#include "handlers/git/git_backend.h"
#include "store/store.h"

using namespace sluice;
namespace http = boost::beast::http;

namespace {

struct World {
  std::string dir;
  std::unique_ptr<Store> store;
  EventHub hub;
  std::unique_ptr<TaskScheduler> tasks;  // not started: parses and answers, runs nothing
  std::unique_ptr<api::Router> router;
};

World& TheWorld() {
  static World* w = [] {
    auto* w = new World();
    char tmpl[] = "/tmp/sluice-fuzz-http-XXXXXX";
    FUZZ_CHECK(mkdtemp(tmpl) != nullptr);
    w->dir = tmpl;
    auto store = OpenStore("sqlite:" + w->dir + "/fuzz.db");
    FUZZ_CHECK(store.ok());
    w->store = std::move(*store);
    std::vector<std::unique_ptr<Backend>> backends;
    backends.push_back(std::make_unique<GitBackend>(w->dir + "/archive", 1));
    w->tasks = std::make_unique<TaskScheduler>(TaskOptions{}, w->store.get(), std::move(backends),
                                               Clock::Real());
    api::RouterDeps deps;
    deps.store = w->store.get();
    deps.hub = &w->hub;
    deps.tasks = w->tasks.get();
    deps.max_streams = 4;
    w->router = std::make_unique<api::Router>(deps);
    return w;
  }();
  return *w;
}

void CheckAnswer(const api::HttpResponse& r) {
  FUZZ_CHECK(r.status >= 100 && r.status < 600);
  if (r.stream || r.content_type.rfind("application/json", 0) != 0) return;
  FUZZ_CHECK(IsValidUtf8(r.body));
  rapidjson::Document d;
  FUZZ_CHECK(ParseJson(r.body, &d).ok());
  if (r.status >= 400) {
    FUZZ_CHECK(d.IsObject() && d.HasMember("error") && d["error"].IsObject());
    FUZZ_CHECK(d["error"].HasMember("code") && d["error"].HasMember("message"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  std::string bytes(reinterpret_cast<const char*>(data), size);
  // Whatever the body, the parsers that read bodies.
  auto job = api::ParseSubmission(bytes);
  if (auto* r = std::get_if<api::HttpResponse>(&job)) CheckAnswer(*r);
  bool malformed = false;
  (void)api::ParseTaskBatch(bytes, *w.tasks, &malformed);
  (void)api::ParseTaskIds(bytes);

  http::request_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  parser.header_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(bytes), ec);
  if (ec || !parser.is_header_done()) return 0;
  auto& req = parser.get();
  auto parsed = api::HttpRequest::FromTarget(
      std::string(req.method_string()), std::string_view(req.target().data(), req.target().size()));
  if (!parsed.ok()) return 0;
  for (const auto& field : req) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    parsed->headers[name] = std::string(field.value());
  }
  parsed->body = req.body();
  // Only what reads: a POST that would change state goes through the parsers above.
  if (parsed->method != "GET" && parsed->method != "HEAD") parsed->path += "/x";
  CheckAnswer(w.router->Handle(*parsed));
  return 0;
}
