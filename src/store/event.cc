// Events made from jobs, and event filters.
#include "store/event.h"

#include <algorithm>

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

Event StateEvent(const Job& job, int64_t ts) {
  Event e = EventOf(job, ts, "job." + std::string(StateName(job.state)));
  e.data = JobJson(job);
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
  w.String(line.c_str(), static_cast<rapidjson::SizeType>(line.size()));
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
