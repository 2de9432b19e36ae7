// Arthur's task JSON: parsing the /add batch and writing tasks and runs.
#include "api/task_json.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <set>

#include "core/clock.h"
#include "core/json.h"
#include "core/text.h"

namespace sluice::api {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Status Invalid(const std::string& task_id, const std::string& what) {
  return Status::InvalidArgument(task_id.empty() ? what
                                                 : "task " + JsonQuote(task_id) + ": " + what);
}

// A non-negative integer member, or `fallback` when absent or null.
Result<int64_t> IntMember(const rapidjson::Value& o, const char* key, int64_t fallback, int64_t min,
                          const std::string& task_id) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd() || it->value.IsNull()) return fallback;
  if (!it->value.IsInt64() || it->value.GetInt64() < min) {
    return Invalid(
        task_id, std::string("scheduler.") + key + " must be an integer >= " + std::to_string(min));
  }
  return it->value.GetInt64();
}

Result<Task> ParseTask(rapidjson::Value& v, const TaskScheduler& tasks,
                       rapidjson::Document::AllocatorType& alloc) {
  if (!v.IsObject()) return Status::InvalidArgument("each task must be an object");
  static const std::set<std::string> kKeys = {"task_id",  "backend", "backend_args",
                                              "category", "archive", "scheduler"};
  Task t;
  auto id = v.FindMember("task_id");
  if (id == v.MemberEnd() || !id->value.IsString()) {
    return Status::InvalidArgument("each task needs a 'task_id' (a string of 1 to 255 bytes)");
  }
  t.task_id = JsonStr(id->value);
  SLUICE_RETURN_IF_ERROR(CheckName("'task_id'", t.task_id));
  for (auto& m : v.GetObject()) {
    if (!kKeys.count(JsonStr(m.name))) {
      return Invalid(t.task_id, "unknown field " + JsonQuote(JsonView(m.name)));
    }
  }
  auto backend = v.FindMember("backend");
  if (backend == v.MemberEnd() || !backend->value.IsString()) {
    return Invalid(t.task_id, "'backend' is missing");
  }
  t.backend = JsonStr(backend->value);
  const Backend* b = tasks.FindBackend(t.backend);
  if (b == nullptr) {
    std::string known;
    for (const std::string& n : tasks.BackendNames()) known += (known.empty() ? "" : ", ") + n;
    return Invalid(t.task_id,
                   "unknown backend " + JsonQuote(t.backend) + " (this daemon has: " + known + ")");
  }
  auto category = v.FindMember("category");
  if (category == v.MemberEnd() || !category->value.IsString()) {
    return Invalid(t.task_id, "'category' is missing");
  }
  t.category = JsonStr(category->value);
  std::vector<std::string> cats = b->categories();
  if (std::find(cats.begin(), cats.end(), t.category) == cats.end()) {
    return Invalid(t.task_id,
                   "the " + t.backend + " backend has no category " + JsonQuote(t.category));
  }
  auto args = v.FindMember("backend_args");
  if (args == v.MemberEnd() || !args->value.IsObject()) {
    return Invalid(t.task_id, "'backend_args' must be an object");
  }
  auto from = args->value.FindMember("from_date");
  if (from != args->value.MemberEnd() && from->value.IsString()) {
    auto when = ParseLooseTime(JsonStr(from->value));
    if (!when.ok()) return Invalid(t.task_id, "backend_args.from_date: " + when.status().message());
    Status in_range = CheckTime("backend_args.from_date", *when);
    if (!in_range.ok()) return Invalid(t.task_id, in_range.message());
    from->value.SetString(FormatTime(*when).c_str(), alloc);
  }
  t.backend_args = WriteJson(args->value);
  Status st = b->Validate(t.backend_args);
  if (!st.ok()) return Invalid(t.task_id, st.message());

  auto archive = v.FindMember("archive");
  // An empty "archive" is no archiving, as in Arthur (its `if not archive_args`).
  if (archive != v.MemberEnd() && !archive->value.IsNull() &&
      !(archive->value.IsObject() && archive->value.MemberCount() == 0)) {
    const rapidjson::Value& a = archive->value;
    if (!a.IsObject()) return Invalid(t.task_id, "'archive' must be an object");
    for (auto& m : a.GetObject()) {
      std::string k = JsonStr(m.name);
      if (k != "fetch_from_archive" && k != "archived_after" && k != "archive_path") {
        return Invalid(t.task_id, "archive has no option " + JsonQuote(k));
      }
    }
    auto f = a.FindMember("fetch_from_archive");
    if (f == a.MemberEnd() || !f->value.IsBool()) {
      return Invalid(t.task_id, "archive.fetch_from_archive must be true or false");
    }
    t.fetch_from_archive = f->value.GetBool();
    auto after = a.FindMember("archived_after");
    if (after != a.MemberEnd() && !after->value.IsNull()) {
      auto when = after->value.IsString()
                      ? ParseLooseTime(JsonStr(after->value))
                      : Result<int64_t>(Status::InvalidArgument("not a string"));
      if (!when.ok()) {
        return Invalid(t.task_id, "archive.archived_after must be a date like 2018-02-26 09:00");
      }
      Status in_range = CheckTime("archive.archived_after", *when);
      if (!in_range.ok()) return Invalid(t.task_id, in_range.message());
    }
    t.archive = WriteJson(a);
  }
  auto sched = v.FindMember("scheduler");
  // None, null or empty: Arthur's defaults, and its scheduling_cfg stays null.
  t.schedule_given = sched != v.MemberEnd() && !sched->value.IsNull() &&
                     !(sched->value.IsObject() && sched->value.MemberCount() == 0);
  if (t.schedule_given) {
    const rapidjson::Value& s = sched->value;
    if (!s.IsObject()) return Invalid(t.task_id, "'scheduler' must be an object");
    for (auto& m : s.GetObject()) {
      std::string k = JsonStr(m.name);
      if (k != "delay" && k != "max_retries" && k != "max_age" && k != "queue") {
        return Invalid(t.task_id, "scheduler has no option " + JsonQuote(k));
      }
    }
    auto delay = IntMember(s, "delay", t.schedule.delay_s, 0, t.task_id);
    if (!delay.ok()) return delay.status();
    Status in_range = CheckDuration("scheduler.delay", static_cast<double>(*delay));
    if (!in_range.ok()) return Invalid(t.task_id, in_range.message());
    auto retries = IntMember(s, "max_retries", t.schedule.max_retries, 0, t.task_id);
    if (!retries.ok()) return retries.status();
    auto age = IntMember(s, "max_age", 0, 1, t.task_id);
    if (!age.ok()) return age.status();
    t.schedule.delay_s = *delay;
    t.schedule.max_retries = static_cast<int>(std::min<int64_t>(*retries, 1'000'000));
    t.schedule.max_age = static_cast<int>(std::min<int64_t>(*age, 1'000'000'000));
    auto queue = s.FindMember("queue");
    if (queue != s.MemberEnd() && !queue->value.IsNull()) {
      if (!queue->value.IsString() || queue->value.GetStringLength() == 0) {
        return Invalid(t.task_id, "scheduler.queue must be a queue name");
      }
      t.schedule.queue = JsonStr(queue->value);
      Status named = CheckName("scheduler.queue", t.schedule.queue);
      if (!named.ok()) return Invalid(t.task_id, named.message());
    }
  }
  return t;
}

void WriteDate(Writer& w, int64_t micros) {
  if (micros) {
    w.String(FormatTime(micros));
  } else {
    w.Null();
  }
}

void WriteRaw(Writer& w, const std::string& json) {
  if (json.empty()) {
    w.Null();
  } else {
    w.RawValue(json.c_str(), json.size(), rapidjson::kObjectType);
  }
}

}  // namespace

Result<std::vector<Task>> ParseTaskBatch(const std::string& body, const TaskScheduler& tasks,
                                         bool* malformed) {
  *malformed = true;
  rapidjson::Document d;
  Status parsed = ParseJson(body, &d);
  if (!parsed.ok() || !d.IsObject()) {
    return Status::InvalidArgument((parsed.ok() ? std::string() : parsed.message() + ": ") +
                                   "the body must be JSON like {\"tasks\": [{\"task_id\": …}]}");
  }
  auto list = d.FindMember("tasks");
  if (list == d.MemberEnd() || !list->value.IsArray()) {
    return Status::InvalidArgument("the body needs a 'tasks' list");
  }
  *malformed = false;
  if (list->value.Empty()) return Status::InvalidArgument("'tasks' is empty");
  std::vector<Task> out;
  std::set<std::string> ids;
  for (auto& v : list->value.GetArray()) {
    auto t = ParseTask(v, tasks, d.GetAllocator());
    if (!t.ok()) return t.status();
    if (!ids.insert(t->task_id).second) {
      return Status::AlreadyExists("task '" + t->task_id + "' is given twice");
    }
    out.push_back(std::move(*t));
  }
  return out;
}

Result<std::vector<std::string>> ParseTaskIds(const std::string& body) {
  rapidjson::Document d;
  Status parsed = ParseJson(body, &d);
  if (!parsed.ok() || !d.IsObject() || !d.HasMember("tasks") || !d["tasks"].IsArray()) {
    return Status::InvalidArgument((parsed.ok() ? std::string() : parsed.message() + ": ") +
                                   "the body must be JSON like {\"tasks\": [{\"task_id\": ID}]}");
  }
  std::vector<std::string> ids;
  for (auto& v : d["tasks"].GetArray()) {
    if (!v.IsObject() || !v.HasMember("task_id") || !v["task_id"].IsString()) {
      return Status::InvalidArgument("each entry of 'tasks' needs a 'task_id' string");
    }
    ids.push_back(JsonStr(v["task_id"]));
    SLUICE_RETURN_IF_ERROR(CheckName("'task_id'", ids.back()));
  }
  return ids;
}

namespace {

// A date as Arthur's clients see them (Python's isoformat of an aware UTC datetime):
// "2015-03-01T00:00:00+00:00", microseconds only when there are some.
std::string ArthurDate(int64_t micros) {
  std::string s = FormatTime(micros);  // "2015-03-01T00:00:00.000000Z"
  s.pop_back();
  if (s.compare(s.size() - 7, 7, ".000000") == 0) s.resize(s.size() - 7);
  return s + "+00:00";
}

// backend_args with its dates written as Arthur writes them.
void WriteBackendArgs(Writer& w, rapidjson::Document& args) {
  auto& a = args.GetAllocator();
  for (const char* key : {"from_date", "to_date", "next_from_date"}) {
    auto it = args.FindMember(key);
    if (it == args.MemberEnd() || !it->value.IsString()) continue;
    auto when = ParseLooseTime(JsonStr(it->value));
    if (when.ok()) it->value.SetString(ArthurDate(*when), a);
  }
  args.Accept(w);
}

// Seconds since the epoch (Arthur's `timestamp()`), from an RFC 3339 string; null otherwise.
void WriteEpoch(Writer& w, const rapidjson::Value& v) {
  auto when = v.IsString() ? ParseTime(JsonStr(v)) : Result<int64_t>(Status::NotFound(""));
  if (when.ok()) {
    w.Double(static_cast<double>(*when) / 1e6);
  } else {
    w.Null();
  }
}

void WriteRunResult(Writer& w, const std::string& stored) {
  rapidjson::Document d;
  if (stored.empty() || !ParseJson(stored, &d).ok() || !d.IsObject()) {
    WriteRaw(w, stored);
    return;
  }
  // Arthur's JobResult.to_dict(): the summary's fields flat beside the ids, dates as epoch
  // seconds; Sluice's summary (RFC 3339 dates) stays beside them.
  auto field = [](const rapidjson::Value& o, const char* k) -> const rapidjson::Value& {
    static const rapidjson::Value kNull;
    if (!o.IsObject()) return kNull;
    auto it = o.FindMember(k);
    return it == o.MemberEnd() ? kNull : it->value;
  };
  const rapidjson::Value& summary = field(d, "summary");
  w.StartObject();
  for (const char* k : {"job_id", "job_number", "task_id"}) {
    w.Key(k);
    field(d, k).Accept(w);
  }
  for (const char* k : {"fetched", "skipped"}) {
    w.Key(k);
    field(summary, k).Accept(w);
  }
  for (const char* k : {"min_updated_on", "max_updated_on", "last_updated_on"}) {
    w.Key(k);
    WriteEpoch(w, field(summary, k));
  }
  for (const char* k : {"last_uuid", "min_offset", "max_offset", "last_offset", "extras"}) {
    w.Key(k);
    field(summary, k).Accept(w);
  }
  w.Key("summary");
  summary.Accept(w);
  w.EndObject();
}

}  // namespace

std::string TaskJson(const Task& t, const std::vector<TaskRun>& runs, bool with_results) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("task_id");
  w.String(t.task_id);
  w.Key("status");
  w.String(TaskStatusName(t.status));
  w.Key("age");
  w.Int(t.age);
  w.Key("num_failures");
  w.Int(t.num_failures);
  w.Key("jobs");
  w.StartArray();
  for (const TaskRun& r : runs) {
    w.StartObject();
    w.Key("job_id");
    w.String(r.job_id);
    w.Key("job_number");
    w.Int(r.job_number);
    if (with_results) {
      w.Key("task_id");
      w.String(t.task_id);
      w.Key("job_status");
      w.String(RunStatusName(r.status));
      w.Key("result");
      WriteRunResult(w, r.result);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("created_on");
  w.Double(static_cast<double>(t.created_on) / 1e6);
  w.Key("backend");
  w.String(t.backend);
  w.Key("backend_args");
  rapidjson::Document args;
  if (ParseJson(t.backend_args, &args).ok() && args.IsObject()) {
    auto& a = args.GetAllocator();
    if (!t.next_from_date.empty()) {
      args.AddMember("next_from_date", rapidjson::Value(t.next_from_date.c_str(), a), a);
    }
    if (t.next_offset) args.AddMember("next_offset", rapidjson::Value(*t.next_offset), a);
    WriteBackendArgs(w, args);
  } else {
    w.Null();
  }
  w.Key("category");
  w.String(t.category);
  w.Key("archiving_cfg");
  WriteRaw(w, t.archive);
  w.Key("scheduling_cfg");
  if (!t.schedule_given) {
    w.Null();
  } else {
    w.StartObject();
    w.Key("delay");
    w.Int64(t.schedule.delay_s);
    w.Key("max_retries");
    w.Int(t.schedule.max_retries);
    w.Key("max_age");
    if (t.schedule.max_age > 0) {
      w.Int(t.schedule.max_age);
    } else {
      w.Null();
    }
    w.Key("queue");
    if (t.schedule.queue.empty()) {
      w.Null();
    } else {
      w.String(t.schedule.queue);
    }
    w.EndObject();
  }
  w.Key("next_run_at");
  WriteDate(w, t.status == TaskStatus::kScheduled ? t.next_run_at : 0);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string RunJson(const TaskRun& r, double timeout_s) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("job_id");
  w.String(r.job_id);
  w.Key("job_number");
  w.Int(r.job_number);
  w.Key("task_id");
  w.String(r.task_id);
  w.Key("job_status");
  w.String(RunStatusName(r.status));
  w.Key("job_description");
  w.String(("fetch for task " + r.task_id + " with " + r.args));
  w.Key("created_at");
  WriteDate(w, r.created_at);
  w.Key("enqueued_at");
  WriteDate(w, r.created_at);
  w.Key("started_at");
  WriteDate(w, r.started_at);
  w.Key("ended_at");
  WriteDate(w, r.ended_at);
  w.Key("lease_until");
  WriteDate(w, r.status == RunStatus::kStarted ? r.lease_until : 0);
  w.Key("timeout");
  w.Int64(static_cast<int64_t>(timeout_s));
  w.Key("origin");
  w.String(r.queue);
  w.Key("backend_args");
  WriteRaw(w, r.args);
  w.Key("result");
  WriteRunResult(w, r.result);
  w.Key("error");
  if (r.error.empty()) {
    w.Null();
  } else {
    w.String(r.error);
  }
  // Arthur's log: one {created, msg, module, level} per line (level as Arthur's handler has
  // it, 0); each stored line is "<RFC 3339 time> <message>".
  w.Key("log");
  w.StartArray();
  std::string_view log = r.log;
  while (!log.empty()) {
    size_t nl = log.find('\n');
    std::string_view line = log.substr(0, nl);
    log = nl == std::string_view::npos ? std::string_view() : log.substr(nl + 1);
    if (line.empty()) continue;
    size_t space = line.find(' ');
    auto when = space == std::string_view::npos ? Result<int64_t>(Status::NotFound(""))
                                                : ParseTime(line.substr(0, space));
    w.StartObject();
    w.Key("created");
    if (when.ok()) {
      w.Double(static_cast<double>(*when) / 1e6);
    } else {
      w.Null();
    }
    w.Key("msg");
    w.String(std::string(when.ok() ? line.substr(space + 1) : line));
    w.Key("module");
    w.String("sluice.tasks");
    w.Key("level");
    w.Int(0);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace sluice::api
