// The rules of one task run: its queue, its arguments, and the task's state after it.
#include "engine/task_runs.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/clock.h"
#include "core/json.h"
#include "core/spdlog.h"

namespace sluice {

std::string NewRunId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

std::string ArgsForRun(const Task& t) {
  rapidjson::Document d;
  if (!ParseJson(t.backend_args, &d).ok() || !d.IsObject()) d.SetObject();
  auto& a = d.GetAllocator();
  if (!t.next_from_date.empty()) {
    d.RemoveMember("from_date");
    d.AddMember("from_date", rapidjson::Value(t.next_from_date.c_str(), a), a);
  }
  if (t.next_offset) {
    d.RemoveMember("offset");
    d.AddMember("offset", rapidjson::Value(*t.next_offset), a);
  }
  return WriteJson(d);
}

std::string QueueFor(const Task& t) {
  if (!t.schedule.queue.empty()) return t.schedule.queue;
  if (t.fetch_from_archive) return "archive";
  if (t.num_failures > 0) return "retry";
  if (t.age > 0) return "update";
  return "create";
}

void AddRunLog(TaskRun* run, int64_t now, const std::string& line) {
  run->log += FormatTime(now) + " " + line + "\n";
}

void SettleFailedRun(Task* task, TaskRun* run, const std::string& error, int64_t now,
                     double retry_delay_s) {
  run->status = RunStatus::kFailed;
  run->error = error;
  run->ended_at = now;
  AddRunLog(run, now, "failed: " + error);
  task->num_failures += 1;
  task->current_job.clear();
  if (task->num_failures > task->schedule.max_retries) {
    task->status = TaskStatus::kFailed;
    spdlog::error(
        "tasks: {} failed {} times in a row, last: {}; it stays FAILED until "
        "rescheduled",
        task->task_id, task->num_failures, error);
    return;
  }
  double delay = std::min(retry_delay_s * std::pow(2.0, task->num_failures - 1), 3600.0);
  task->status = TaskStatus::kScheduled;
  task->next_run_at = SatAdd(now, SecondsToMicros(delay));
  spdlog::warn("tasks: run {} of {} failed ({}); retry {} of {} in {:.1f} s", run->job_number,
               task->task_id, error, task->num_failures, task->schedule.max_retries, delay);
}

namespace {

// An item's time as a cursor: a commit dated past 2200 (a repository's content says what it
// likes) would become a from_date every later run refuses, failing the task for good.
int64_t CursorTime(const TaskItem& item) {
  return CheckTime("updated_on", item.updated_on).ok() ? item.updated_on : 0;
}

}  // namespace

void ItemTally::Add(const std::vector<TaskItem>& batch) {
  for (const TaskItem& item : batch) {
    ++items;
    newest = std::max(newest, CursorTime(item));
    if (item.seq == 0) continue;
    ++fetched;
    min_on = min_on ? std::min(min_on, item.updated_on) : item.updated_on;
    max_on = std::max(max_on, item.updated_on);
    last_on = item.updated_on;
    last_uuid = item.uuid;
  }
}

Store::SettleRun SettleSucceededRun(Task* task, TaskRun* run, std::vector<TaskItem>* items,
                                    int64_t now, const ItemTally& earlier) {
  run->status = RunStatus::kFinished;
  run->ended_at = now;
  task->num_failures = 0;
  task->current_job.clear();
  int64_t newest = earlier.newest;
  for (const TaskItem& item : *items) newest = std::max(newest, CursorTime(item));
  if (newest != 0) {
    auto cursor = task->next_from_date.empty() ? Result<int64_t>(int64_t{0})
                                               : ParseTime(task->next_from_date);
    if (!cursor.ok() || newest > *cursor) task->next_from_date = FormatTime(newest);
  }
  if (task->fetch_from_archive ||
      (task->schedule.max_age > 0 && task->age >= task->schedule.max_age)) {
    task->status = TaskStatus::kCompleted;
  } else {
    task->status = TaskStatus::kScheduled;
    task->next_run_at = SatAdd(now, SatMul(task->schedule.delay_s, 1'000'000));
  }
  TaskStatus next_status = task->status;
  // The summary counts what was new to the task, known only inside the transaction.
  return [items, now, next_status, earlier](TaskRun* r) {
    ItemTally all = earlier;
    all.Add(*items);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    auto date = [&w](int64_t t) {
      if (t) {
        w.String(FormatTime(t));
      } else {
        w.Null();
      }
    };
    w.StartObject();
    w.Key("job_id");
    w.String(r->job_id);
    w.Key("job_number");
    w.Int(r->job_number);
    w.Key("task_id");
    w.String(r->task_id);
    w.Key("summary");
    w.StartObject();
    w.Key("fetched");
    w.Int64(all.fetched);
    w.Key("skipped");
    w.Int64(all.items - all.fetched);
    w.Key("min_updated_on");
    date(all.min_on);
    w.Key("max_updated_on");
    date(all.max_on);
    w.Key("last_updated_on");
    date(all.last_on);
    w.Key("last_uuid");
    if (all.fetched > 0) {
      w.String(all.last_uuid);
    } else {
      w.Null();
    }
    w.Key("min_offset");
    w.Null();
    w.Key("max_offset");
    w.Null();
    w.Key("last_offset");
    w.Null();
    w.EndObject();
    w.EndObject();
    r->result.assign(buf.GetString(), buf.GetSize());
    AddRunLog(r, now,
              "done: " + std::to_string(all.fetched) + " new items, " +
                  std::to_string(all.items - all.fetched) + " already stored; task " +
                  TaskStatusName(next_status));
  };
}

Event TaskEvent(const Task& task, const TaskRun* run, int64_t ts) {
  Event e;
  e.ts = ts;
  e.queue = run != nullptr ? run->queue : "";
  e.kind = "task";
  e.type = TaskEventType(task.status);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("task");
  w.String(task.task_id);
  w.Key("status");
  w.String(TaskStatusName(task.status));
  w.Key("age");
  w.Int(task.age);
  w.Key("num_failures");
  w.Int(task.num_failures);
  if (run != nullptr) {
    w.Key("job_id");
    w.String(run->job_id);
    w.Key("job_status");
    w.String(RunStatusName(run->status));
    if (!run->error.empty()) {
      w.Key("error");
      w.String(run->error);
    }
  }
  if (task.status == TaskStatus::kScheduled) {
    w.Key("next_run_at");
    w.String(FormatTime(task.next_run_at));
  }
  w.EndObject();
  e.data.assign(buf.GetString(), buf.GetSize());
  return e;
}

std::string TaskJobKey(const std::string& run_id) { return "task-run:" + run_id; }

std::string TaskJobPayload(const TaskRun& run) {
  return "{\"task_run\":" + JsonQuote(run.job_id) + ",\"task_id\":" + JsonQuote(run.task_id) + "}";
}

Status ParseTaskJobPayload(const std::string& payload, std::string* run_id, std::string* task_id) {
  rapidjson::Document d;
  if (!ParseJson(payload, &d).ok() || !d.IsObject() || !d.HasMember("task_run") ||
      !d["task_run"].IsString() || !d.HasMember("task_id") || !d["task_id"].IsString()) {
    return Status::InvalidArgument(
        "not a task run: a task job's payload is {\"task_run\": RUN_ID, \"task_id\": TASK_ID}, "
        "made by the task scheduler");
  }
  *run_id = JsonStr(d["task_run"]);
  *task_id = JsonStr(d["task_id"]);
  return Status::Ok();
}

}  // namespace sluice
