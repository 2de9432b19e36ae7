// `sluice tasks`: King Arthur's task API from the command line (asks the running daemon).
#include <curl/curl.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/remote.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/percent.h"

namespace sluice::cli {
namespace {

int Print(const Result<RemoteAnswer>& answer) {
  if (!answer.ok()) return ExitCode(answer.status());
  std::printf("%s\n", answer->body.c_str());
  return AnswerExitCode(answer->status);
}

// One line per task: id, status, runs, failures in a row, when it runs next, its cursor.
int PrintTable(const RemoteAnswer& answer) {
  rapidjson::Document d;
  if (!ParseJson(answer.body, &d).ok() || !d.IsObject() || !d.HasMember("tasks") ||
      !d["tasks"].IsArray()) {
    std::printf("%s\n", answer.body.c_str());
    return 1;
  }
  std::printf("%-30s %-10s %-9s %5s %8s  %-27s %s\n", "TASK", "STATUS", "BACKEND", "RUNS",
              "FAILURES", "NEXT RUN", "CURSOR (next_from_date)");
  for (auto& t : d["tasks"].GetArray()) {
    if (!t.IsObject()) continue;
    auto str = [&t](const char* k) {
      return t.HasMember(k) && t[k].IsString() ? JsonStr(t[k]) : std::string("-");
    };
    auto num = [&t](const char* k) { return t.HasMember(k) && t[k].IsInt() ? t[k].GetInt() : 0; };
    std::string cursor = "-";
    if (t.HasMember("backend_args") && t["backend_args"].IsObject() &&
        t["backend_args"].HasMember("next_from_date") &&
        t["backend_args"]["next_from_date"].IsString()) {
      cursor = JsonStr(t["backend_args"]["next_from_date"]);
    }
    std::printf("%-30s %-10s %-9s %5d %8d  %-27s %s\n", str("task_id").c_str(),
                str("status").c_str(), str("backend").c_str(), num("age"), num("num_failures"),
                str("next_run_at").c_str(), cursor.c_str());
  }
  return 0;
}

std::string IdList(const std::vector<std::string>& ids) {
  std::string body = "{\"tasks\":[";
  for (size_t i = 0; i < ids.size(); ++i) {
    body += (i ? ",{\"task_id\":" : "{\"task_id\":") + JsonQuote(ids[i]) + "}";
  }
  return body + "]}";
}

}  // namespace

int RunTasks(const RemoteFlags& flags, const std::string& action,
             const std::vector<std::string>& args, bool json) {
  if (action == "add") {
    if (args.size() != 1)
      return ExitCode(Status::InvalidArgument("tasks add FILE (or - for stdin)"));
    std::stringstream body;
    if (args[0] == "-") {
      body << std::cin.rdbuf();
    } else {
      std::ifstream in(args[0]);
      if (!in) return ExitCode(Status::NotFound("cannot read " + args[0]));
      body << in.rdbuf();
    }
    return Print(Ask(flags, "POST", "/add", body.str()));
  }
  if (action == "remove" || action == "reschedule") {
    if (args.empty()) return ExitCode(Status::InvalidArgument("tasks " + action + " ID..."));
    auto answer = Ask(flags, "POST", "/" + action, IdList(args));
    int code = Print(answer);
    // {"tasks": {ID: false}}: not there (remove) or not FAILED (reschedule).
    if (code == 0 && answer->body.find(":false") != std::string::npos) {
      return action == "remove" ? 3 : 2;
    }
    return code;
  }
  if (action == "list") {
    auto answer = Ask(flags, "GET", "/tasks");
    if (!answer.ok() || json || answer->status >= 300) return Print(answer);
    return PrintTable(*answer);
  }
  if (action == "show") {
    if (args.size() != 1) return ExitCode(Status::InvalidArgument("tasks show ID"));
    return Print(Ask(flags, "GET", "/task/" + PercentEncode(args[0], "-_.~")));
  }
  if (action == "job") {
    if (args.size() != 1) return ExitCode(Status::InvalidArgument("tasks job JOB_ID"));
    return Print(Ask(flags, "GET", "/job/" + PercentEncode(args[0], "-_.~")));
  }
  return ExitCode(Status::InvalidArgument("tasks: add, remove, reschedule, list, show or job"));
}

}  // namespace sluice::cli
