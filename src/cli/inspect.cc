// jobs, show, stats, retry.
#include "cli/inspect.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/text.h"
#include "spool/spool_dir.h"
#include "store/job_json.h"
#include "store/store.h"

namespace sluice::cli {

int RunJobs(const JobsFlags& f) {
  auto store = OpenExistingStore(f.database, f.store);
  if (!store.ok()) return ExitCode(store.status());
  JobFilter filter;
  filter.limit = f.limit;
  if (!f.state.empty()) {
    auto s = ParseState(f.state);
    if (!s.ok()) return ExitCode(s.status());
    filter.state = *s;
  }
  auto jobs = (*store)->ListJobs(filter);
  if (!jobs.ok()) return ExitCode(jobs.status());
  if (f.json) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartArray();
    for (const Job& j : *jobs) WriteJobJson(j, &w);
    w.EndArray();
    std::printf("%s\n", buf.GetString());
    return 0;
  }
  std::printf("%-8s %-10s %-8s %-48s %s\n", "ID", "STATE", "TRIES", "NAME", "ERROR");
  for (const Job& j : *jobs) {
    std::string tries = std::to_string(j.attempts) + "/" + std::to_string(j.max_attempts);
    std::string err = j.error.code.empty() ? "" : j.error.code + ": " + j.error.message;
    if (err.size() > 100) err = err.substr(0, 97) + "...";
    // Names and errors came from outside: a terminal's escape sequence is shown, not obeyed.
    std::printf("%-8lld %-10s %-8s %-48s %s\n", static_cast<long long>(j.id),
                std::string(StateName(j.state)).c_str(), tries.c_str(),
                PrintableLine(j.name).c_str(), PrintableLine(err).c_str());
  }
  return 0;
}

int RunShow(const std::string& database, const StoreOptions& options, const std::string& what) {
  auto store = OpenExistingStore(database, options);
  if (!store.ok()) return ExitCode(store.status());
  Result<Job> job = Status::NotFound("no job " + what);
  bool numeric = !what.empty() && what.find_first_not_of("0123456789") == std::string::npos;
  if (numeric) {
    job = (*store)->GetJob(std::stoll(what));
  } else {
    JobFilter f;
    f.name = what;
    f.limit = 1;
    auto jobs = (*store)->ListJobs(f);
    if (!jobs.ok()) return ExitCode(jobs.status());
    if (!jobs->empty()) job = jobs->front();
  }
  if (!job.ok()) return ExitCode(job.status());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  WriteJobJson(*job, &w);
  std::printf("%s\n", buf.GetString());
  return 0;
}

int RunStats(const std::string& database, const StoreOptions& options) {
  auto store = OpenExistingStore(database, options);
  if (!store.ok()) return ExitCode(store.status());
  auto counts = (*store)->CountJobsByState();
  if (!counts.ok()) return ExitCode(counts.status());
  std::printf("jobs:\n");
  for (JobState s :
       {JobState::kQueued, JobState::kRunning, JobState::kRetrying, JobState::kSucceeded,
        JobState::kFailed, JobState::kCancelled, JobState::kDeferred}) {
    auto it = counts->find(std::string(StateName(s)));
    std::printf("  %-10s %lld\n", std::string(StateName(s)).c_str(),
                static_cast<long long>(it == counts->end() ? 0 : it->second));
  }
  auto by_spool = (*store)->CountJobsBySpool();
  if (!by_spool.ok()) return ExitCode(by_spool.status());
  std::printf("spools:\n");
  std::string current = "\x01";
  for (const auto& [key, n] : *by_spool) {
    if (key.first != current) {
      current = key.first;
      std::printf("  %s\n", current.empty() ? "(sent over HTTP)" : PrintableLine(current).c_str());
    }
    std::printf("    %-10s %lld\n", PrintableLine(key.second).c_str(), static_cast<long long>(n));
  }
  std::printf("objects:\n");
  for (const char* table : {"checkouts", "builds", "tests", "issues", "incidents"}) {
    auto n = (*store)->CountRows(table);
    std::printf("  %-10s %lld\n", table, static_cast<long long>(n.ok() ? *n : 0));
  }
  // Who holds what, on a database daemons share (engine/ownership.h).
  auto leases = (*store)->ListLeases();
  if (!leases.ok()) return ExitCode(leases.status());
  if (!leases->empty()) {
    int64_t now = Clock::Real()->NowMicros();
    std::printf("leases:\n");
    for (const Lease& l : *leases) {
      double left = (l.until - now) / 1e6;
      std::printf("  %-40s %-40s epoch %-6lld %s\n", PrintableLine(l.name).c_str(),
                  PrintableLine(l.owner).c_str(), static_cast<long long>(l.epoch),
                  left >= 0 ? ("for " + std::to_string(static_cast<long long>(left)) + " s").c_str()
                            : "ended");
    }
  }
  return 0;
}

int RunRetry(const std::string& spool_dir, const std::string& name, bool all_failed,
             const std::string& database, const StoreOptions& options) {
  Env* env = Env::Default();
  SpoolDir spool(env, spool_dir);
  if (Status st = spool.Prepare(); !st.ok()) return ExitCode(st);
  std::unique_ptr<Store> store;
  if (!database.empty()) {
    auto opened = OpenExistingStore(database, options);
    if (!opened.ok()) return ExitCode(opened.status());
    store = std::move(*opened);
  }
  std::vector<std::string> names;
  if (all_failed) {
    auto entries = env->ListDir(spool.FailedDir());
    if (!entries.ok()) return ExitCode(entries.status());
    for (const DirEntry& e : *entries) {
      const std::string kReport = ".error.json";
      bool report = e.name.size() > kReport.size() &&
                    e.name.compare(e.name.size() - kReport.size(), kReport.size(), kReport) == 0;
      if (!report && SpoolDir::IsCandidateName(e.name)) names.push_back(e.name);
    }
  } else {
    names.push_back(name);
  }
  int moved = 0;
  std::vector<int64_t> jobs;
  for (const std::string& n : names) {
    // Whose file it is, from its report (read before Restore drops it).
    auto whose = store != nullptr ? spool.ReportedJobOf(n) : Result<int64_t>(Status::NotFound(""));
    Status st = spool.Restore(n, n);
    if (!st.ok()) {
      std::fprintf(stderr, "sluice retry: %s: %s\n", PrintableLine(n).c_str(),
                   PrintableLine(st.ToString()).c_str());
      if (!all_failed) return ExitCode(st);
      continue;
    }
    ++moved;
    if (whose.ok()) jobs.push_back(*whose);
  }
  if (Status st = spool.Sync(); !st.ok()) return ExitCode(st);
  std::printf("moved %d file%s back into %s\n", moved, moved == 1 ? "" : "s", spool.root().c_str());
  if (store != nullptr) {
    auto marked = store->MarkRetried(jobs, Clock::Real()->NowMicros());
    if (!marked.ok()) return ExitCode(marked.status());
    std::printf("marked %lld job%s retried in %s", static_cast<long long>(*marked),
                *marked == 1 ? "" : "s", database.c_str());
    int64_t gone = static_cast<int64_t>(jobs.size()) - *marked;
    if (gone > 0) {
      std::printf(" (%lld no longer there: pruned, or marked already)",
                  static_cast<long long>(gone));
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace sluice::cli
