// The dashboard's summaries: GET /api/v1/overview, GET /api/v1/failures and
// POST /api/v1/failures/retry. The advice for each error code is the README's table,
// compiled into the binary, so the page and the README never disagree.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>

#include "api/router.h"
#include "core/clock.h"
#include "core/embedded.h"
#include "core/json.h"
#include "store/job_json.h"

namespace sluice::api {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

struct Advice {
  std::string meaning;
  std::string what_to_do;
};

// The rows of the README's "| code | meaning | what to do |" table.
const std::map<std::string, Advice>& AdviceTable() {
  static const std::map<std::string, Advice> table = [] {
    std::map<std::string, Advice> out;
    auto readme = EmbeddedFile("README.md");
    if (!readme) return out;
    std::string_view text = *readme;
    size_t at = text.find("\n| code | meaning | what to do |\n");
    if (at == std::string_view::npos) return out;
    size_t pos = text.find('\n', at + 1) + 1;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      if (line.empty() || line[0] != '|') break;
      // | `code` | meaning | what to do |
      std::vector<std::string> cells;
      size_t c = 1;
      while (c < line.size()) {
        size_t next = line.find(" |", c);
        if (next == std::string_view::npos) break;
        std::string cell(line.substr(c, next - c));
        size_t b = cell.find_first_not_of(' ');
        cells.push_back(b == std::string::npos ? "" : cell.substr(b));
        c = next + 2;
      }
      if (cells.size() != 3 || cells[0].size() < 3 || cells[0].front() != '`') continue;
      out[cells[0].substr(1, cells[0].size() - 2)] = Advice{cells[1], cells[2]};
    }
    return out;
  }();
  return table;
}

void WriteAdvice(const std::string& code, JsonWriter* w) {
  auto it = AdviceTable().find(code);
  if (it == AdviceTable().end()) return;
  w->Key("meaning");
  w->String(it->second.meaning);
  w->Key("what_to_do");
  w->String(it->second.what_to_do);
}

}  // namespace

HttpResponse Router::Overview() const {
  int64_t now = Clock::Real()->NowMicros();
  auto counts = deps_.store->CountJobsByQueue();
  if (!counts.ok()) return HttpResponse::FromStatus(counts.status());
  auto sum = deps_.store->SummarizeJobs(now, 15);
  if (!sum.ok()) return HttpResponse::FromStatus(sum.status());
  auto leases = deps_.store->ListLeases();
  if (!leases.ok()) return HttpResponse::FromStatus(leases.status());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("now");
  w.String(FormatTime(now));
  w.Key("queues");
  w.StartArray();
  std::map<std::string, std::map<std::string, int64_t>> by_queue;
  for (const auto& [key, n] : *counts) by_queue[key.first][key.second] = n;
  for (const auto& [queue, jobs] : by_queue) {
    w.StartObject();
    w.Key("name");
    w.String(queue);
    w.Key("jobs");
    w.StartObject();
    for (const auto& [state, n] : jobs) {
      w.Key(state.c_str(), static_cast<rapidjson::SizeType>(state.size()));
      w.Int64(n);
    }
    w.EndObject();
    w.Key("oldest_waiting");
    auto oldest = sum->oldest_waiting.find(queue);
    if (oldest != sum->oldest_waiting.end()) {
      w.String(FormatTime(oldest->second));
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("spools");
  WriteSpools(&w);
  w.Key("failures");
  w.StartArray();
  for (size_t i = 0; i < sum->failures.size() && i < 10; ++i) {
    w.StartObject();
    w.Key("code");
    w.String(sum->failures[i].first);
    w.Key("count");
    w.Int64(sum->failures[i].second);
    w.EndObject();
  }
  w.EndArray();
  w.Key("per_minute");
  w.StartArray();
  for (const JobsSummary::Minute& m : sum->per_minute) {
    w.StartObject();
    w.Key("minute");
    w.String(FormatTime(m.start));
    w.Key("succeeded");
    w.Int64(m.succeeded);
    w.Key("failed");
    w.Int64(m.failed);
    w.EndObject();
  }
  w.EndArray();
  // Who holds what on a shared database (processes, spools, scheduler, reconciler, …).
  w.Key("leases");
  w.StartArray();
  for (const Lease& l : *leases) {
    w.StartObject();
    w.Key("name");
    w.String(l.name);
    w.Key("owner");
    w.String(l.owner);
    w.Key("until");
    w.String(FormatTime(l.until));
    w.Key("live");
    w.Bool(l.until > now);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
}

HttpResponse Router::Failures(const HttpRequest& r) const {
  if (r.path == "/api/v1/failures/retry") {
    if (r.method != "POST") return HttpResponse::Error(405, "method_not_allowed", "use POST");
    rapidjson::Document d;
    if (!ParseJson(r.body, &d).ok() || !d.IsObject() || !d.HasMember("code") ||
        !d["code"].IsString()) {
      return HttpResponse::Error(400, "invalid_argument", "send {\"code\": \"ERROR_CODE\"}");
    }
    if (!deps_.retry) return HttpResponse::Error(503, "unavailable", "no engine here");
    // Every failed job of the code, newest first, at most 10,000 per call.
    JobFilter f;
    f.state = JobState::kFailed;
    f.error_code = JsonStr(d["code"]);
    f.retried = false;  // a spool file's job whose file went back already is not tried again
    f.limit = 500;
    int64_t retried = 0;
    std::vector<std::string> errors;
    std::vector<int64_t> ids;
    while (ids.size() < 10000) {
      auto page = deps_.store->ListJobs(f);
      if (!page.ok()) return HttpResponse::FromStatus(page.status());
      for (const Job& j : *page) ids.push_back(j.id);
      if (static_cast<int>(page->size()) < f.limit) break;
      f.before_id = page->back().id;
    }
    std::vector<bool> as_new_file;
    auto done = deps_.retry(ids, &as_new_file, 5000);  // off the I/O thread
    for (size_t i = 0; i < done.size(); ++i) {
      if (done[i].ok()) {
        ++retried;
      } else if (errors.size() < 10) {
        errors.push_back("job " + std::to_string(ids[i]) + ": " + done[i].status().message());
      }
    }
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    w.Key("code");
    w.String(*f.error_code);
    w.Key("retried");
    w.Int64(retried);
    w.Key("errors");
    w.StartArray();
    for (const std::string& e : errors) w.String(e);
    w.EndArray();
    w.EndObject();
    return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
  }
  if (r.method != "GET" && r.method != "HEAD") {
    return HttpResponse::Error(405, "method_not_allowed", "use GET");
  }
  auto sum = deps_.store->SummarizeJobs(Clock::Real()->NowMicros(), 1);
  if (!sum.ok()) return HttpResponse::FromStatus(sum.status());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("failures");
  w.StartArray();
  for (const auto& [code, n] : sum->failures) {
    w.StartObject();
    w.Key("code");
    w.String(code);
    w.Key("count");
    w.Int64(n);
    WriteAdvice(code, &w);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
}

}  // namespace sluice::api
