// Parsing and checking of job submissions.
#include "api/submit.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/text.h"

namespace sluice::api {
namespace {

HttpResponse Invalid(const std::string& message) {
  return HttpResponse::Error(422, "invalid_request", message);
}

}  // namespace

std::variant<Job, HttpResponse> ParseSubmission(const std::string& body) {
  rapidjson::Document d;
  if (Status st = ParseJson(body, &d); !st.ok()) {
    return HttpResponse::Error(400, "invalid_json", "the body: " + st.message());
  }
  if (!d.IsObject()) return Invalid("the body must be a JSON object");
  static const char* kFields[] = {"kind",         "queue",  "payload",        "priority",
                                  "max_attempts", "run_at", "idempotency_key"};
  for (auto& m : d.GetObject()) {
    bool known = false;
    for (const char* f : kFields) known = known || m.name == f;
    if (!known) return Invalid("unknown field " + JsonQuote(JsonView(m.name)));
  }
  Job job;
  auto kind = d.FindMember("kind");
  if (kind == d.MemberEnd() || !kind->value.IsString() || kind->value.GetStringLength() == 0) {
    return Invalid("'kind' is required and must be a non-empty string");
  }
  job.kind = JsonStr(kind->value);
  if (Status st = CheckName("'kind'", job.kind); !st.ok()) return Invalid(st.message());
  if (auto q = d.FindMember("queue"); q != d.MemberEnd()) {
    if (!q->value.IsString() || q->value.GetStringLength() == 0) {
      return Invalid("'queue' must be a non-empty string");
    }
    job.queue = JsonStr(q->value);
    if (Status st = CheckName("'queue'", job.queue); !st.ok()) return Invalid(st.message());
  }
  auto payload = d.FindMember("payload");
  if (payload == d.MemberEnd() || payload->value.IsNull()) return Invalid("'payload' is required");
  if (payload->value.IsString()) {
    job.payload = JsonStr(payload->value);
  } else {
    job.payload = WriteJson(payload->value);  // depth-limited by ParseJson: no deep recursion
  }
  if (auto p = d.FindMember("priority"); p != d.MemberEnd()) {
    if (!p->value.IsInt()) {
      return Invalid("'priority' must be an integer from -2147483648 to 2147483647");
    }
    job.priority = p->value.GetInt();
  }
  job.max_attempts = 0;  // the daemon's --max-attempts
  if (auto m = d.FindMember("max_attempts"); m != d.MemberEnd()) {
    if (!m->value.IsInt() || m->value.GetInt() < 1 || m->value.GetInt() > 1000) {
      return Invalid("'max_attempts' must be an integer from 1 to 1000");
    }
    job.max_attempts = m->value.GetInt();
  }
  if (auto r = d.FindMember("run_at"); r != d.MemberEnd()) {
    if (!r->value.IsString()) return Invalid("'run_at' must be an RFC 3339 date-time string");
    auto t = ParseTime(JsonView(r->value));
    if (!t.ok()) return Invalid("'run_at': " + t.status().message());
    if (Status st = CheckTime("'run_at'", *t); !st.ok()) return Invalid(st.message());
    job.run_at = *t;
  }
  if (auto k = d.FindMember("idempotency_key"); k != d.MemberEnd()) {
    if (!k->value.IsString()) return Invalid("'idempotency_key' must be a string");
    job.idempotency_key = JsonStr(k->value);
    if (Status st = CheckName("'idempotency_key'", job.idempotency_key); !st.ok()) {
      return Invalid(st.message());
    }
  }
  return job;
}

}  // namespace sluice::api
