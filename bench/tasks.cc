// bench/tasks: recurring git tasks end to end (TaskScheduler + GitBackend + SQLite store).
//
//   build/bench_tasks [--commits N] [--new M] [--idle-runs K]
//
// Builds a local repository of N commits (default 20,000; git fast-import), then:
//   first run:   clone + git log + parse + N items stored with the run's result and cursor,
//                in one transaction: seconds and items/s
//   new commits: M more commits (default 100); the run that picks them up: its duration
//   idle runs:   K runs (default 20) with nothing new: p50/p99 duration (git fetch + log from
//                the cursor + the already-stored commits of the cursor's second)
// and the peak RSS. Needs git in PATH.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "bench/bench_util.h"
#include "core/spdlog.h"
#include "engine/task_scheduler.h"
#include "handlers/git/git_backend.h"

using namespace sluice;

namespace {

// Appends `n` commits to refs/heads/main of `repo` with git fast-import, one second apart from
// `start` (unix seconds), each touching one of 50 files.
void AddCommits(const std::string& repo, int first, int n, int64_t start) {
  std::string cmd = "git -C " + repo + " fast-import --quiet";
  FILE* p = popen(cmd.c_str(), "w");
  for (int i = first; i < first + n; ++i) {
    std::string content = "line " + std::to_string(i) + "\n";
    std::string msg = "commit " + std::to_string(i) + "\n";
    std::fprintf(p, "commit refs/heads/main\ncommitter Bench <b@example.org> %lld +0000\n",
                 static_cast<long long>(start + i));
    std::fprintf(p, "data %zu\n%s", msg.size(), msg.c_str());
    if (i == first && first > 0) std::fprintf(p, "from refs/heads/main^0\n");
    std::fprintf(p, "M 644 inline f%d.txt\ndata %zu\n%s\n", i % 50, content.size(),
                 content.c_str());
  }
  pclose(p);
}

double Seconds(int64_t micros) { return micros / 1e6; }

}  // namespace

int main(int argc, char** argv) {
  int commits = 20000, fresh = 100, idle_runs = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--commits")) commits = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--new")) fresh = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--idle-runs")) idle_runs = std::atoi(argv[i + 1]);
  }
  spdlog::set_level(spdlog::level::warn);
  std::string dir = bench::FreshDir("tasks");
  std::string repo = dir + "/repo.git";
  std::system(("git init -q --bare " + repo).c_str());
  int64_t start = 1'600'000'000;
  AddCommits(repo, 0, commits, start);

  auto store = OpenStore("sqlite:" + dir + "/t.db");
  if (!store.ok()) return 1;
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(std::make_unique<GitBackend>(dir + "/archive", 600));
  TaskOptions o;
  o.workers = 1;
  TaskScheduler sched(o, store->get(), std::move(backends), Clock::Real());
  if (!sched.Start().ok()) return 1;
  Task t;
  t.task_id = "bench";
  t.backend = "git";
  t.category = "commit";
  t.backend_args = "{\"uri\":\"" + repo + "\"}";
  t.schedule.delay_s = 0;
  if (!sched.Add({t}).ok()) return 1;

  // Waits for run `n` to end; its run record.
  auto wait_run = [&](int n) {
    while (true) {
      auto task = (*store)->GetTask("bench");
      auto runs = (*store)->ListTaskRuns(task->seq);
      if (static_cast<int>(runs->size()) >= n && (*runs)[n - 1].ended_at != 0) {
        return (*runs)[n - 1];
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  };
  TaskRun first = wait_run(1);
  double first_s = Seconds(first.ended_at - first.started_at);
  std::printf("first run: %d commits in %.2f s (%.0f items/s), clone included\n", commits, first_s,
              commits / first_s);
  int next = 2;
  wait_run(next);
  AddCommits(repo, commits, fresh, start);
  TaskRun picked;
  while (true) {
    picked = wait_run(++next);
    if (picked.result.find("\"fetched\":" + std::to_string(fresh)) != std::string::npos) break;
    if (next > 1000) return 1;
  }
  std::printf("new commits: %d picked up by run %d in %.3f s\n", fresh, next,
              Seconds(picked.ended_at - picked.started_at));
  std::vector<double> idle;
  for (int i = 0; i < idle_runs; ++i) {
    TaskRun r = wait_run(++next);
    idle.push_back(Seconds(r.ended_at - r.started_at) * 1000);
  }
  sched.Stop();
  auto task = (*store)->GetTask("bench");
  auto count = (*store)->CountRows("items");
  std::printf("idle runs: %d, p50 %.1f ms, p99 %.1f ms; items stored %lld (expected %d)\n",
              idle_runs, bench::Percentile(idle, 0.5), bench::Percentile(idle, 0.99),
              static_cast<long long>(count.ok() ? *count : -1), commits + fresh);
  std::printf("peak RSS: %.1f MB\n", bench::PeakRssMb());
  std::filesystem::remove_all(dir);
  return count.ok() && *count == commits + fresh ? 0 : 1;
}
