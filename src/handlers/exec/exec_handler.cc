// ExecHandler: parse the command, check it, run it, stream its output into the log.
#include "handlers/exec/exec_handler.h"

#include <fnmatch.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <deque>

#include "core/json.h"
#include "core/spawn.h"
#include "core/subprocess.h"
#include "core/text.h"

namespace sluice {
struct Command {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  double max_time_s = 0;
};

namespace {

Status Invalid(HandlerOutput* out, const std::string& why) {
  out->error_code = "invalid_job";
  return Status::InvalidArgument(why);
}

Result<Command> ParseCommand(const std::string& text, HandlerOutput* out, bool* not_json) {
  rapidjson::Document d;
  if (Status st = ParseJson(text, &d); !st.ok()) {
    *not_json = true;
    return Invalid(out, st.message() +
                            ": give an argv list like [\"/bin/echo\", \"hi\"] or "
                            "{\"argv\": [...]}");
  }
  Command c;
  const rapidjson::Value* argv = &d;
  if (d.IsObject()) {
    for (auto& m : d.GetObject()) {
      std::string k = JsonStr(m.name);
      if (k != "argv" && k != "env" && k != "cwd" && k != "max_time") {
        return Invalid(out, "unknown field " + JsonQuote(k) + " (argv, env, cwd, max_time)");
      }
    }
    if (!d.HasMember("argv")) return Invalid(out, "no 'argv'");
    argv = &d["argv"];
    if (d.HasMember("env")) {
      if (!d["env"].IsObject()) return Invalid(out, "'env' must be an object of strings");
      for (auto& m : d["env"].GetObject()) {
        std::string name = JsonStr(m.name);
        if (!m.value.IsString() || name.empty() || name.find('=') != std::string::npos ||
            name.find('\0') != std::string::npos ||
            JsonView(m.value).find('\0') != std::string_view::npos) {
          return Invalid(out, "'env' must map names to strings (no '=' in a name, no NUL)");
        }
        c.env.push_back(name + "=" + JsonStr(m.value));
      }
    }
    if (d.HasMember("cwd")) {
      if (!d["cwd"].IsString() || JsonView(d["cwd"]).find('\0') != std::string_view::npos) {
        return Invalid(out, "'cwd' must be a directory");
      }
      c.cwd = JsonStr(d["cwd"]);
    }
    if (d.HasMember("max_time")) {
      if (!d["max_time"].IsNumber() || d["max_time"].GetDouble() <= 0) {
        return Invalid(out, "'max_time' must be a positive number of seconds");
      }
      if (Status st = CheckDuration("'max_time'", d["max_time"].GetDouble()); !st.ok()) {
        return Invalid(out, st.message());
      }
      c.max_time_s = d["max_time"].GetDouble();
    }
  }
  if (!argv->IsArray() || argv->Empty()) {
    return Invalid(out, "the command must be a non-empty list of strings");
  }
  for (auto& a : argv->GetArray()) {
    if (!a.IsString()) return Invalid(out, "every argv entry must be a string");
    // An argument is a C string: one holding a NUL would be cut there without a word.
    if (JsonView(a).find('\0') != std::string_view::npos) {
      return Invalid(out, "an argv entry holds a NUL byte (\\u0000)");
    }
    c.argv.push_back(JsonStr(a));
  }
  if (c.argv[0].empty()) return Invalid(out, "argv[0] is empty");
  return c;
}

std::string ArgvText(const std::vector<std::string>& argv) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const std::string& a : argv) w.String(a.c_str(), static_cast<unsigned>(a.size()));
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

// The template with "{role}" placeholders replaced by the job's files.
Result<Command> FromTemplate(const std::vector<std::string>& tmpl, const HandlerContext& ctx,
                             HandlerOutput* out) {
  if (ctx.files.empty()) {
    return Invalid(out, "this spool runs a command template: a job needs files, not a payload");
  }
  Command c;
  for (std::string arg : tmpl) {
    for (size_t open = arg.find('{'); open != std::string::npos; open = arg.find('{', open)) {
      size_t close = arg.find('}', open);
      if (close == std::string::npos) break;
      std::string role = arg.substr(open + 1, close - open - 1);
      auto it = role == "file" ? ctx.files.find("json") : ctx.files.find(role);
      if (it == ctx.files.end()) {
        open = close + 1;
        continue;
      }
      arg.replace(open, close - open + 1, it->second);
      open += it->second.size();
    }
    c.argv.push_back(std::move(arg));
  }
  return c;
}

namespace {

// The files a template hands to a command are regular files, looked at (without following
// a link) just before it starts: a symlink, directory or FIFO put in their place would make
// the command read outside the spool or block.
Status CheckJobFiles(const HandlerContext& ctx, HandlerOutput* out) {
  for (const auto& [role, path] : ctx.files) {
    auto info = ctx.env->Stat(path);
    if (!info.ok()) {
      out->error_code = FileErrorCode(info.status());
      return info.status();
    }
    if (info->type == FileType::kRegular) continue;
    out->error_code = "unreadable_file";
    const char* what = info->type == FileType::kSymlink     ? "a symbolic link"
                       : info->type == FileType::kDirectory ? "a directory"
                                                            : "a FIFO, socket or device";
    return Status::InvalidArgument(path + " is " + what +
                                   ", not a regular file: a command is only given regular files");
  }
  return Status::Ok();
}

// A command's arguments and environment must fit in the kernel's limit (ARG_MAX); a file
// many times larger cannot hold one, whatever it says (JSON spends at most six bytes on one,
// and eight leaves room for indentation). Such a file is not read: parsing it would take
// memory, several times its size, for a command that cannot start. ARG_MAX follows the
// stack limit, read once (sysconf asks the kernel each time: a system call per job).
uint64_t ArgMax() {
  static const long arg_max = sysconf(_SC_ARG_MAX);
  return arg_max > 0 ? static_cast<uint64_t>(arg_max) : 0;
}

uint64_t MaxCommandFileBytes() { return ArgMax() > 0 ? 8 * ArgMax() + (64 << 10) : UINT64_MAX; }

Status ReadCommandFile(const HandlerContext& ctx, std::string* text, HandlerOutput* out) {
  if (ctx.payload != nullptr) return ReadJobInput(ctx, text, out);  // bounded by the API
  uint64_t bound = std::min<uint64_t>(ctx.max_file_bytes, MaxCommandFileBytes());
  Status st = ctx.env->ReadFile(ctx.path, bound, text, nullptr);
  if (st.ok()) return st;
  out->error_code = FileErrorCode(st);
  auto info = ctx.env->Stat(ctx.path);
  if (bound < ctx.max_file_bytes && info.ok() && info->size > bound) {
    return Status::InvalidArgument(
        ctx.path + " is " + std::to_string(info->size) +
        " bytes: no command that large fits the kernel's limit on arguments and environment (" +
        std::to_string(ArgMax()) + " bytes), so it is not read");
  }
  return st;
}

}  // namespace

Status ExecHandler::Run(const HandlerContext& ctx, HandlerOutput* out) {
  if (!options_.command.empty()) {
    SLUICE_RETURN_IF_ERROR(CheckJobFiles(ctx, out));
    auto cmd = FromTemplate(options_.command, ctx, out);
    if (!cmd.ok()) return cmd.status();
    return RunCommand(*cmd, ctx, out);
  }
  std::string text;
  SLUICE_RETURN_IF_ERROR(ReadCommandFile(ctx, &text, out));
  bool not_json = false;
  auto cmd = ParseCommand(text, out, &not_json);
  if (!cmd.ok()) {
    if (ctx.raw_log) {
      ctx.raw_log(not_json ? std::string("Couldn't load json; murdering\n")
                           : "Not a command (" + cmd.status().message() + "); murdering\n");
    }
    return cmd.status();
  }
  return RunCommand(*cmd, ctx, out);
}

namespace {

// `glob` with the part before its first wildcard made canonical (realpath of the directory,
// or of the whole path when it has no wildcard); the glob as given when that part is missing.
std::string CanonicalGlob(const std::string& glob) {
  size_t wild = glob.find_first_of("*?[");
  std::string fixed = glob, rest;
  if (wild != std::string::npos) {
    size_t slash = glob.rfind('/', wild);
    if (slash == std::string::npos) return glob;
    fixed = glob.substr(0, slash == 0 ? 1 : slash);
    rest = glob.substr(slash == 0 ? 1 : slash);
  }
  char real[PATH_MAX];
  if (::realpath(fixed.c_str(), real) == nullptr) return glob;
  std::string out = real;
  if (!rest.empty() && out != "/") out += rest;
  if (!rest.empty() && out == "/") out += rest.substr(1);
  return out;
}

// The bytes `line` takes as a JSON string, where a log line is kept (an event, a job's log):
// a control character is six ("\u0000"), a byte that is not UTF-8 three (U+FFFD). The log's
// bound is on these, so output of NUL bytes cannot store six times the bound.
size_t StoredBytes(std::string_view line) {
  std::string repaired;
  if (!IsValidUtf8(line)) {
    repaired = ValidUtf8(line);
    line = repaired;
  }
  size_t n = line.size();
  for (unsigned char c : line) {
    if (c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f') {
      n += 1;
    } else if (c < 0x20) {
      n += 5;
    }
  }
  return n;
}

}  // namespace

ExecHandler::ExecHandler(ExecOptions options) : options_(std::move(options)) {
  for (const std::string& glob : options_.allowed_commands) {
    if (glob.find('/') == std::string::npos) continue;
    allowed_paths_.push_back(glob);
    std::string canonical = CanonicalGlob(glob);
    if (canonical != glob) allowed_paths_.push_back(canonical);
  }
}

static bool IsLoaderVariable(const std::string& name) {
  static const char* const kNever[] = {
      "GCONV_PATH",  "GETCONF_DIR",  "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN",
      "LOCPATH",     "MALLOC_TRACE", "NIS_PATH",       "NLSPATH",     "RESOLV_HOST_CONF",
      "RES_OPTIONS", "TZDIR",        "SLUICE_RUN"};
  if (name.rfind("LD_", 0) == 0) return true;
  for (const char* n : kNever) {
    if (name == n) return true;
  }
  return false;
}

Status ExecHandler::Check(const Command& cmd, const std::string& path, HandlerOutput* out) const {
  if (!options_.allowed_commands.empty()) {
    bool bare = cmd.argv[0].find('/') == std::string::npos;
    bool allowed = false;
    for (const std::string& glob : allowed_paths_) {
      allowed = allowed || fnmatch(glob.c_str(), path.c_str(), FNM_PATHNAME) == 0;
    }
    for (const std::string& glob : options_.allowed_commands) {
      if (glob.find('/') != std::string::npos) continue;
      allowed = allowed || (bare && fnmatch(glob.c_str(), cmd.argv[0].c_str(), 0) == 0);
    }
    if (!allowed) {
      out->error_code = "command_not_allowed";
      return Status::InvalidArgument(JsonQuote(cmd.argv[0]) + " (" + JsonQuote(path) +
                                     ") is not in allowed_commands");
    }
  }
  for (const std::string& kv : cmd.env) {
    std::string name = kv.substr(0, kv.find('='));
    bool allowed = !IsLoaderVariable(name);
    if (allowed) {
      allowed = false;
      for (const std::string& glob : options_.allowed_env) {
        allowed = allowed || fnmatch(glob.c_str(), name.c_str(), 0) == 0;
      }
    }
    if (!allowed) {
      out->error_code = "env_not_allowed";
      return Status::InvalidArgument("the job sets " + JsonQuote(name) +
                                     (IsLoaderVariable(name)
                                          ? ", which no job may set (the dynamic loader's)"
                                          : ", which is not in allowed_env (--allowed-env)"));
    }
  }
  return Status::Ok();
}

Status ExecHandler::RunCommand(const Command& command, const HandlerContext& ctx,
                               HandlerOutput* out) {
  const Command* cmd = &command;
  // What runs is decided here, once: the checked path is the one executed.
  auto path = ResolveCommand(cmd->argv[0], cmd->cwd);
  Status allowed = path.ok() ? Check(*cmd, *path, out) : Status::Ok();
  if (!path.ok() && !options_.allowed_commands.empty()) {
    out->error_code = "command_not_allowed";
    allowed = Status::InvalidArgument(path.status().message() +
                                      "; only commands in allowed_commands run");
  }
  if (!allowed.ok()) {
    if (ctx.raw_log) ctx.raw_log("Not run (" + allowed.message() + "); murdering\n");
    return allowed;
  }
  // command_runner's log: what runs, in Python's repr, then the output as it comes.
  auto raw = [&ctx](std::string_view text) {
    if (ctx.raw_log) ctx.raw_log(text);
  };
  raw("Running " + PythonRepr(cmd->argv) + "\n");

  // Output lines go out in small batches: at most every 200 ms or 100 lines.
  std::vector<std::string> pending;
  auto last_flush = std::chrono::steady_clock::now();
  auto flush = [&](bool force) {
    auto now = std::chrono::steady_clock::now();
    if (pending.empty() ||
        (!force && pending.size() < 100 && now - last_flush < std::chrono::milliseconds(200))) {
      return;
    }
    last_flush = now;
    if (ctx.live_log) {
      ctx.live_log(std::move(pending));
    } else {
      out->log.insert(out->log.end(), pending.begin(), pending.end());
    }
    pending.clear();
  };
  pending.push_back("Running " + ArgvText(cmd->argv));
  flush(true);

  SubprocessOptions so;
  so.argv = cmd->argv;
  if (path.ok()) so.path = *path;
  so.env = cmd->env;
  so.cwd = cmd->cwd;
  double max_time = cmd->max_time_s > 0 ? cmd->max_time_s : options_.max_time_s;
  so.timeout_s = max_time > 0 ? max_time : 1e9;
  so.stop_signals = {SIGINT, SIGTERM, SIGKILL};
  so.grace_s = options_.grace_s;
  // The first half of the kept lines go out as they come; then the newest half is held, to be
  // logged at the end (what says why a command failed), and the lines between are counted.
  const size_t head_lines = options_.max_log_lines - options_.max_log_lines / 2;
  const size_t tail_lines = options_.max_log_lines / 2;
  const size_t half_bytes = ExecOptions::kMaxLogBytes / 2;
  size_t head_kept = 0, head_bytes = 0, tail_bytes = 0, not_kept = 0;
  std::deque<std::pair<std::string, size_t>> tail;  // each line with its StoredBytes
  so.on_line = [&](int stream, std::string_view line) {
    std::string text = stream == 2 ? "stderr: " + std::string(line) : std::string(line);
    size_t stored = StoredBytes(text);
    if (not_kept == 0 && tail.empty() && head_kept < head_lines &&
        head_bytes + stored <= half_bytes) {
      ++head_kept;
      head_bytes += stored;
      pending.push_back(std::move(text));
      flush(false);
      return;
    }
    tail_bytes += stored;
    tail.emplace_back(std::move(text), stored);
    while (!tail.empty() && (tail.size() > tail_lines || tail_bytes > half_bytes)) {
      tail_bytes -= tail.front().second;
      tail.pop_front();
      ++not_kept;
    }
  };
  so.on_output = [&](std::string_view bytes) { raw(bytes); };
  so.on_signal = [&](int sig) { raw("Killing with " + std::to_string(sig) + "\n"); };
  so.tick = [&] {
    flush(false);
    if (ctx.heartbeat) ctx.heartbeat();
  };
  auto started = std::chrono::steady_clock::now();
  auto r = RunSubprocess(so);
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char result[96];
  int rc = r.ok() ? (r->signal ? -r->signal : r->exit_code) : -1;
  std::snprintf(result, sizeof(result), "Result: %d, Elapsed: %.1f seconds", rc, elapsed);
  if (r.ok()) raw("\n" + std::string(result) + "\n");  // a command that never started has none
  if (not_kept > 0) {
    pending.push_back(
        "[" + std::to_string(not_kept) + " lines of output not kept here: a log keeps " +
        std::to_string(options_.max_log_lines) + " lines (--max-log-lines) and " +
        std::to_string(ExecOptions::kMaxLogBytes >> 20) + " MB, the first and the last]");
  }
  for (auto& line : tail) pending.push_back(std::move(line.first));
  flush(true);
  out->log.push_back(result);
  char summary[128];
  std::snprintf(summary, sizeof(summary), "{\"exit_code\":%d,\"elapsed_s\":%.3f}", rc, elapsed);
  out->summary = summary;
  if (!r.ok()) {
    out->error_code = "command_failed_to_start";
    // Arguments too long for the kernel fail at once; anything else is tried again.
    if (r.status().code() == Code::kInvalidArgument) return r.status();
    return Status::Unavailable(r.status().message());
  }
  if (r->timed_out) {
    out->error_code = "command_timed_out";
    return Status::Unavailable("stopped at max_time: " + r->Describe(max_time));
  }
  if (!r->ok()) {
    out->error_code = "command_failed";
    return Status::Unavailable(r->signal ? "killed by signal " + std::to_string(r->signal)
                                         : "exit " + std::to_string(r->exit_code));
  }
  return Status::Ok();
}

}  // namespace sluice
