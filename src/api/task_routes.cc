// Router: King Arthur's task API, at Arthur's paths.
//   POST /add         {"tasks": [...]}: all added, or none (400 bad JSON, 409 a task id taken,
//                     422 an unknown backend or a bad argument, 507 past --max-tasks or
//                     --max-task-bytes)
//   POST /remove      {"tasks": [{"task_id"}]}  -> {"tasks": {ID: removed?}}
//   POST /reschedule  {"tasks": [{"task_id"}]}  -> {"tasks": {ID: rescheduled?}} (FAILED ones)
//   GET /tasks, GET /task/{id} (with its jobs and their results), GET /job/{id} (one run)
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "api/router.h"
#include "api/task_json.h"
#include "core/text.h"

namespace sluice::api {
namespace {

constexpr int kJobsListed = 100;  // per task in GET /tasks (GET /task/{id} has all kept)

HttpResponse Outcome(const std::vector<std::pair<std::string, bool>>& done) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("tasks");
  w.StartObject();
  for (const auto& [id, ok] : done) {
    w.Key(id.c_str(), static_cast<unsigned>(id.size()));
    w.Bool(ok);
  }
  w.EndObject();
  w.EndObject();
  return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
}

}  // namespace

bool IsTaskPath(const std::string& path) {
  return path == "/add" || path == "/remove" || path == "/reschedule" || path == "/tasks" ||
         path.rfind("/task/", 0) == 0 || path.rfind("/job/", 0) == 0;
}

HttpResponse Router::Tasks(const HttpRequest& r) const {
  if (deps_.tasks == nullptr) {
    return HttpResponse::Error(503, "unavailable", "no task scheduler here");
  }
  if (!deps_.tasks->running()) {
    // On a shared database one daemon runs the tasks (the "scheduler" lease).
    return HttpResponse::Error(503, "unavailable",
                               "the recurring tasks run on another daemon sharing this "
                               "database; ask that one (this one takes over if it dies)");
  }
  bool post = r.path == "/add" || r.path == "/remove" || r.path == "/reschedule";
  if (post && r.method != "POST") return HttpResponse::Error(405, "method_not_allowed", "use POST");
  // Arthur's server answers its reading routes to any method (its own tests POST to them).
  if (!post && r.method != "GET" && r.method != "HEAD" && r.method != "POST") {
    return HttpResponse::Error(405, "method_not_allowed", "use GET");
  }
  if (r.path == "/add") {
    bool malformed = false;
    auto tasks = ParseTaskBatch(r.body, *deps_.tasks, &malformed);
    if (!tasks.ok()) {
      if (tasks.status().code() == Code::kInvalidArgument && !malformed) {
        return HttpResponse::Error(422, "invalid_task", tasks.status().message());
      }
      return HttpResponse::FromStatus(tasks.status());
    }
    size_t n = tasks->size();
    Status st = deps_.tasks->Add(std::move(*tasks));
    if (st.code() == Code::kFailedPrecondition) {  // --max-tasks, --max-task-bytes
      return HttpResponse::Error(507, "too_many_tasks", st.message());
    }
    if (!st.ok()) return HttpResponse::FromStatus(st);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("message");
    w.String("Tasks added");
    w.Key("added");
    w.Uint64(n);
    w.EndObject();
    return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
  }
  if (r.path == "/remove" || r.path == "/reschedule") {
    auto ids = ParseTaskIds(r.body);
    if (!ids.ok()) return HttpResponse::FromStatus(ids.status());
    return Outcome(r.path == "/remove" ? deps_.tasks->Remove(*ids) : deps_.tasks->Reschedule(*ids));
  }
  if (r.path == "/tasks") {
    auto tasks = deps_.store->ListTasks();
    if (!tasks.ok()) return HttpResponse::FromStatus(tasks.status());
    std::string body = "{\"tasks\":[";
    for (size_t i = 0; i < tasks->size(); ++i) {
      // Only ids, and only the newest: every task's every run, logs and all, made this one
      // request read millions of rows on a large installation.
      auto runs = deps_.store->ListTaskRunIds((*tasks)[i].seq, kJobsListed);
      if (!runs.ok()) return HttpResponse::FromStatus(runs.status());
      body += (i ? "," : "") + TaskJson((*tasks)[i], *runs, false);
    }
    return HttpResponse::Json(200, body + "]}");
  }
  // An id no task or run could have (task ids pass CheckName; run ids are UUIDs) is not
  // looked for: the store might refuse it (PostgreSQL: not UTF-8) rather than not find it.
  std::string id = r.path.substr(r.path.find('/', 1) + 1);
  if (!CheckName("id", id).ok()) {
    return HttpResponse::Error(404, "not_found",
                               std::string(r.path[1] == 't' ? "no task '" : "no job '") + id + "'");
  }
  if (r.path.rfind("/task/", 0) == 0) {
    auto task = deps_.store->GetTask(id);
    if (!task.ok()) return HttpResponse::FromStatus(task.status());
    auto runs = deps_.store->ListTaskRuns(task->seq);
    if (!runs.ok()) return HttpResponse::FromStatus(runs.status());
    return HttpResponse::Json(200, TaskJson(*task, *runs, true));
  }
  auto run = deps_.store->GetTaskRun(id);
  if (!run.ok()) return HttpResponse::FromStatus(run.status());
  return HttpResponse::Json(200, RunJson(*run, deps_.tasks->options().job_timeout_s));
}

}  // namespace sluice::api
