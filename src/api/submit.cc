// Parsing and checking of job submissions.
#include "api/submit.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/clock.h"

namespace sluice::api {
namespace {

HttpResponse Invalid(const std::string& message) {
  return HttpResponse::Error(422, "invalid_request", message);
}

}  // namespace

std::variant<Job, HttpResponse> ParseSubmission(const std::string& body) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body.data(),
                                                                                  body.size());
  if (d.HasParseError()) {
    return HttpResponse::Error(400, "invalid_json",
                               std::string("the body is not JSON: ") +
                                   rapidjson::GetParseError_En(d.GetParseError()) + " at byte " +
                                   std::to_string(d.GetErrorOffset()));
  }
  if (!d.IsObject()) return Invalid("the body must be a JSON object");
  static const char* kFields[] = {"kind",         "queue",  "payload",        "priority",
                                  "max_attempts", "run_at", "idempotency_key"};
  for (auto& m : d.GetObject()) {
    bool known = false;
    for (const char* f : kFields) known = known || m.name == f;
    if (!known) return Invalid(std::string("unknown field '") + m.name.GetString() + "'");
  }
  Job job;
  auto kind = d.FindMember("kind");
  if (kind == d.MemberEnd() || !kind->value.IsString() || kind->value.GetStringLength() == 0) {
    return Invalid("'kind' is required and must be a non-empty string");
  }
  job.kind = kind->value.GetString();
  if (auto q = d.FindMember("queue"); q != d.MemberEnd()) {
    if (!q->value.IsString() || q->value.GetStringLength() == 0) {
      return Invalid("'queue' must be a non-empty string");
    }
    job.queue = q->value.GetString();
  }
  auto payload = d.FindMember("payload");
  if (payload == d.MemberEnd() || payload->value.IsNull()) return Invalid("'payload' is required");
  if (payload->value.IsString()) {
    job.payload.assign(payload->value.GetString(), payload->value.GetStringLength());
  } else {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    payload->value.Accept(w);
    job.payload.assign(buf.GetString(), buf.GetSize());
  }
  if (auto p = d.FindMember("priority"); p != d.MemberEnd()) {
    if (!p->value.IsInt()) return Invalid("'priority' must be an integer");
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
    auto t = ParseTime(r->value.GetString());
    if (!t.ok()) return Invalid("'run_at': " + t.status().message());
    job.run_at = *t;
  }
  if (auto k = d.FindMember("idempotency_key"); k != d.MemberEnd()) {
    if (!k->value.IsString() || k->value.GetStringLength() == 0 ||
        k->value.GetStringLength() > 256) {
      return Invalid("'idempotency_key' must be a string of 1 to 256 characters");
    }
    job.idempotency_key = k->value.GetString();
  }
  return job;
}

}  // namespace sluice::api
