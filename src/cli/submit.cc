// `sluice submit` and `sluice cancel`: jobs over the daemon's API from the command line.
#include <fcntl.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/remote.h"
#include "core/fd.h"
#include "core/json.h"
#include "store/job.h"

namespace sluice::cli {
namespace {

// Larger payloads go through a spool: the daemon's request bodies are bounded far below.
constexpr size_t kMaxPayloadBytes = size_t{1} << 30;
// Deep enough for any daemon's --max-json-depth: the daemon applies its own.
constexpr int kMaxLocalDepth = 10000;

Result<std::string> ReadInput(const std::string& input) {
  UniqueFd owned;
  int fd = STDIN_FILENO;
  std::string what = input == "-" ? std::string("stdin") : input;
  if (input != "-") {
    owned = UniqueFd(::open(input.c_str(), O_RDONLY | O_CLOEXEC));
    if (!owned.valid()) {
      return errno == ENOENT ? Status::NotFound("cannot read " + input + ": no such file")
                             : Status::FromErrno(errno, "open " + input);
    }
    fd = owned.get();
  }
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(what + " is a directory");
  }
  std::string text;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read " + what);
    if (n == 0) return text;
    if (text.size() + static_cast<size_t>(n) > kMaxPayloadBytes) {
      return Status::InvalidArgument(what + " is larger than 1 GiB: put it in a spool instead");
    }
    text.append(buf, static_cast<size_t>(n));
  }
}

// Polls the job until it ends (or the timeout): prints it then, as GET /api/v1/jobs/ID
// answers; 0 when it succeeded, 1 otherwise. The answer carries the job's whole history, so
// the polls space out (0.1 s, growing to 2 s) for a job that runs long.
int WaitFor(const RemoteFlags& flags, int64_t id, double timeout_s) {
  auto start = std::chrono::steady_clock::now();
  auto pause = std::chrono::milliseconds(100);
  std::string path = "/api/v1/jobs/" + std::to_string(id);
  while (true) {
    auto answer = Ask(flags, "GET", path);
    if (!answer.ok()) return ExitCode(answer.status());
    if (answer->status != 200) {
      std::printf("%s\n", answer->body.c_str());
      return AnswerExitCode(answer->status) == 0 ? 1 : AnswerExitCode(answer->status);
    }
    rapidjson::Document d;
    std::string state;
    if (ParseJson(answer->body, &d).ok() && d.IsObject() && d.HasMember("state") &&
        d["state"].IsString()) {
      state = JsonStr(d["state"]);
    }
    if (auto known = ParseState(state); known.ok() && IsFinal(*known)) {
      std::printf("%s\n", answer->body.c_str());
      return state == "succeeded" ? 0 : 1;
    }
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (timeout_s > 0 && waited >= timeout_s) {
      std::printf("%s\n", answer->body.c_str());
      std::fprintf(stderr, "sluice: job %lld is still %s after %g s (--timeout)\n",
                   static_cast<long long>(id), state.empty() ? "unknown" : state.c_str(),
                   timeout_s);
      return 1;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::milliseconds>(pause * 3 / 2, std::chrono::seconds(2));
  }
}

}  // namespace

int RunSubmit(const RemoteFlags& flags, const SubmitFlags& submit) {
  if (submit.timeout_s > 0 && !submit.wait) {
    return ExitCode(Status::InvalidArgument("--timeout goes with --wait"));
  }
  auto text = ReadInput(submit.input);
  if (!text.ok()) return ExitCode(text.status());
  // Checked here so that a typo is named with its place before anything is sent; the
  // text then goes into the request as it is.
  rapidjson::Document doc;
  JsonParseError where;
  if (Status st = ParseJson(*text, &doc, kMaxLocalDepth, &where); !st.ok()) {
    std::string what = submit.input == "-" ? std::string("stdin") : submit.input;
    return ExitCode(Status::InvalidArgument(
        what + ": " +
        (where.too_deep ? "nested deeper than " + std::to_string(kMaxLocalDepth) + " levels"
                        : st.message())));
  }
  std::string body = "{\"kind\":" + JsonQuote(submit.kind);
  if (!submit.queue.empty()) body += ",\"queue\":" + JsonQuote(submit.queue);
  if (submit.priority) body += ",\"priority\":" + std::to_string(*submit.priority);
  if (submit.max_attempts) body += ",\"max_attempts\":" + std::to_string(*submit.max_attempts);
  if (!submit.run_at.empty()) body += ",\"run_at\":" + JsonQuote(submit.run_at);
  if (!submit.idempotency_key.empty()) {
    body += ",\"idempotency_key\":" + JsonQuote(submit.idempotency_key);
  }
  body += ",\"payload\":" + *text + "}";
  text->clear();
  auto answer = Ask(flags, "POST", "/api/v1/jobs", body);
  if (!answer.ok()) return ExitCode(answer.status());
  int code = AnswerExitCode(answer->status);
  rapidjson::Document job;
  if (code != 0 || !submit.wait || !ParseJson(answer->body, &job).ok() || !job.IsObject() ||
      !job.HasMember("id") || !job["id"].IsInt64()) {
    std::printf("%s\n", answer->body.c_str());
    return code;
  }
  return WaitFor(flags, job["id"].GetInt64(), submit.timeout_s);
}

int RunCancel(const RemoteFlags& flags, const std::string& id) {
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) {
    return ExitCode(Status::InvalidArgument("cancel: '" + id + "' is not a job id"));
  }
  auto answer = Ask(flags, "POST", "/api/v1/jobs/" + id + "/cancel", "{}");
  if (!answer.ok()) return ExitCode(answer.status());
  std::printf("%s\n", answer->body.c_str());
  return AnswerExitCode(answer->status);
}

}  // namespace sluice::cli
