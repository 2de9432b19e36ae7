// The JSON shape of a job, shared by `sluice jobs --json`, `sluice show` and the HTTP API.
#include "store/job_json.h"

#include "core/clock.h"
#include "core/text.h"

namespace sluice {

void WriteJobJson(const Job& j, rapidjson::Writer<rapidjson::StringBuffer>* writer) {
  auto& w = *writer;
  w.StartObject();
  w.Key("id");
  w.Int64(j.id);
  w.Key("state");
  w.String(std::string(StateName(j.state)));
  w.Key("kind");
  w.String(j.kind);
  w.Key("queue");
  w.String(j.queue);
  w.Key("origin");
  w.String(j.spool.empty() ? "api" : "spool");
  if (!j.spool.empty()) {
    w.Key("spool");
    w.String(j.spool);
    w.Key("name");
    w.String(j.name);
  }
  if (!j.idempotency_key.empty()) {
    w.Key("idempotency_key");
    w.String(j.idempotency_key);
  }
  if (j.priority != 0) {
    w.Key("priority");
    w.Int(j.priority);
  }
  w.Key("attempts");
  w.Int(j.attempts);
  w.Key("max_attempts");
  w.Int(j.max_attempts);
  w.Key("interruptions");
  w.Int(j.interruptions);
  w.Key("created_at");
  w.String(FormatTime(j.created_at));
  if (j.last_tried) {
    w.Key("last_tried");
    w.String(FormatTime(j.last_tried));
  }
  if (j.finished_at) {
    w.Key("finished_at");
    w.String(FormatTime(j.finished_at));
  }
  if (j.retried_at) {  // a spool file's job whose file went back into the spool
    w.Key("retried_at");
    w.String(FormatTime(j.retried_at));
  }
  if (j.state == JobState::kRetrying || (j.state == JobState::kQueued && j.run_at > 0)) {
    w.Key("run_at");
    w.String(FormatTime(j.run_at));
  }
  if (!j.error.code.empty()) {
    w.Key("error");
    WriteJobErrorJson(j.error, true, writer);
  }
  if (!j.result.empty()) {
    w.Key("result");
    w.RawValue(j.result.c_str(), j.result.size(), rapidjson::kObjectType);
  }
  w.EndObject();
}

void WriteJobErrorJson(const JobError& error, bool with_detail,
                       rapidjson::Writer<rapidjson::StringBuffer>* writer) {
  auto& w = *writer;
  w.StartObject();
  w.Key("code");
  w.String(error.code);
  w.Key("message");
  w.String(ValidUtf8(error.message));  // may quote a command's output or a file's bytes
  if (with_detail && !error.detail.empty()) {
    w.Key("detail");
    w.RawValue(error.detail.c_str(), error.detail.size(), rapidjson::kObjectType);
  }
  w.EndObject();
}

std::string JobJson(const Job& job) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  WriteJobJson(job, &w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace sluice
