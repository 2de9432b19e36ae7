// Events made from jobs, and event filters.
#include "store/event.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>

#include "core/clock.h"
#include "core/text.h"
#include "store/job_json.h"

namespace sluice {

namespace {

Event EventOf(const Job& job, int64_t ts, std::string type) {
  Event e;
  e.ts = ts;
  e.job_id = job.id;
  e.queue = job.queue;
  e.kind = job.kind;
  e.type = std::move(type);
  return e;
}

}  // namespace

std::string TaskEventType(TaskStatus status) {
  std::string name = TaskStatusName(status);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "task." + name;
}

const std::vector<std::string>& EventTypes() {
  static const auto* types = [] {
    auto* out = new std::vector<std::string>();
    for (JobState s : kAllJobStates) {
      out->push_back("job." + std::string(StateName(s)));
    }
    out->push_back(kLogEvent);
    for (TaskStatus s : {TaskStatus::kNew, TaskStatus::kScheduled, TaskStatus::kEnqueued,
                         TaskStatus::kRunning, TaskStatus::kCompleted, TaskStatus::kFailed}) {
      out->push_back(TaskEventType(s));
    }
    return out;
  }();
  return *types;
}

Event StateEvent(const Job& job, int64_t ts) {
  Event e = EventOf(job, ts, "job." + std::string(StateName(job.state)));
  // What changed, compactly: events are written for every job, three or more times.
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("job");
  w.Int64(job.id);
  w.Key("state");
  w.String(std::string(StateName(job.state)));
  if (!job.name.empty()) {
    w.Key("name");
    w.String(job.name.c_str(), static_cast<rapidjson::SizeType>(job.name.size()));
  }
  w.Key("attempts");
  w.Int(job.attempts);
  w.Key("max_attempts");
  w.Int(job.max_attempts);
  if (job.priority != 0) {
    w.Key("priority");
    w.Int(job.priority);
  }
  if (job.run_at > 0 && !IsFinal(job.state)) {
    w.Key("run_at");
    w.String(FormatTime(job.run_at));
  }
  if (!job.error.code.empty()) {
    w.Key("error");
    WriteJobErrorJson(job.error, false, &w);
  }
  if (!job.result.empty() && job.state == JobState::kSucceeded) {
    w.Key("result");
    w.RawValue(job.result.c_str(), job.result.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  e.data.assign(buf.GetString(), buf.GetSize());
  return e;
}

Event LogEvent(const Job& job, int64_t ts, const std::string& line) {
  Event e = EventOf(job, ts, kLogEvent);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("job");
  w.Int64(job.id);
  w.Key("line");
  // A command's output is whatever bytes it wrote: kept as UTF-8 text for every reader.
  w.String(ValidUtf8(line));
  w.EndObject();
  e.data.assign(buf.GetString(), buf.GetSize());
  return e;
}

bool Matches(const EventFilter& f, const Event& e) {
  if (f.job_id != 0 && e.job_id != f.job_id) return false;
  if (f.queue && e.queue != *f.queue) return false;
  if (f.kind && e.kind != *f.kind) return false;
  if (!f.types.empty() && std::find(f.types.begin(), f.types.end(), e.type) == f.types.end()) {
    return false;
  }
  return true;
}

}  // namespace sluice
