// bench/tasks: recurring git tasks end to end (TaskScheduler + GitBackend + SQLite store).
//
//   build/bench_tasks [--commits N] [--new M] [--idle-runs K] [--many T]
//
// Builds a local repository of N commits (default 20,000; git fast-import), then:
//   first run:   clone + git log + parse + N items stored with the run's result and cursor,
//                in one transaction: seconds and items/s
//   new commits: M more commits (default 100); the run that picks them up: its duration
//   idle runs:   K runs (default 20) with nothing new: p50/p99 duration (git fetch + log from
//                the cursor + the already-stored commits of the cursor's second)
//   many tasks:  T tasks (default 20,000) added at once, their first runs queued, all removed:
//                the times, and how long a caller of the scheduler (as the API is) waited
// and the peak RSS. Needs git in PATH.
#include <algorithm>
#include <atomic>
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

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// `n` tasks added at once (each due at once, its origin unreachable), their first runs all
// queued, then all removed, while another caller of the scheduler (as the API is) asks every
// 5 ms: the times, and that caller's waits, on the store at `url` (a fresh SQLite database
// when empty). Returns false on an error.
bool ManyTasks(const std::string& dir, int n, const std::string& url) {
  auto store = OpenStore(url.empty() ? "sqlite:" + dir + "/many.db" : url);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return false;
  }
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(std::make_unique<GitBackend>(dir + "/archive-many", 600));
  TaskOptions o;
  o.workers = 1;
  TaskScheduler sched(o, store->get(), std::move(backends), Clock::Real());
  if (!sched.Start().ok()) return false;
  std::vector<Task> tasks;
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back("many" + std::to_string(i));
  (void)sched.Remove(ids);  // what an earlier run left in a shared database
  for (int i = 0; i < n; ++i) {
    Task t;
    t.task_id = "many" + std::to_string(i);
    t.backend = "git";
    t.category = "commit";
    t.backend_args = "{\"uri\":\"" + dir + "/none/" + t.task_id + "\"}";
    t.schedule.delay_s = 3600;
    tasks.push_back(t);
  }
  std::atomic<bool> stop{false};
  std::vector<double> waits;
  std::thread caller([&] {
    while (!stop) {
      auto t0 = std::chrono::steady_clock::now();
      (void)sched.Reschedule({"none"});
      waits.push_back(Since(t0) * 1000);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  auto t0 = std::chrono::steady_clock::now();
  bool ok = sched.Add(std::move(tasks)).ok();
  double add_s = Since(t0);
  t0 = std::chrono::steady_clock::now();
  while (ok) {  // every task's first run queued (its age 1)
    auto stored = (*store)->ListTasks();
    if (!stored.ok()) break;
    size_t queued = 0;
    for (const Task& t : *stored) queued += t.age >= 1;
    if (queued == static_cast<size_t>(n)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double queue_s = Since(t0);
  t0 = std::chrono::steady_clock::now();
  auto removed = sched.Remove(ids);
  double remove_s = Since(t0);
  stop = true;
  caller.join();
  sched.Stop();
  size_t gone = 0;
  for (const auto& [id, done] : removed) gone += done;
  std::printf(
      "%d tasks at once: added in %.3f s, first runs queued in %.2f s (%.0f/s), removed "
      "in %.3f s; a call meanwhile waited p50 %.2f ms, p99 %.1f ms, at most %.1f ms\n",
      n, add_s, queue_s, n / queue_s, remove_s, bench::Percentile(waits, 0.5),
      bench::Percentile(waits, 0.99),
      waits.empty() ? 0.0 : *std::max_element(waits.begin(), waits.end()));
  return ok && gone == static_cast<size_t>(n);
}

}  // namespace

int main(int argc, char** argv) {
  int commits = 20000, fresh = 100, idle_runs = 20, many = 20000;
  std::string many_db;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--many-database")) many_db = argv[i + 1];
    if (!std::strcmp(argv[i], "--many")) many = std::atoi(argv[i + 1]);
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
  spdlog::set_level(spdlog::level::err);  // every run of the many tasks fails, and says so
  bool many_ok = many <= 0 || ManyTasks(dir, many, many_db);
  std::printf("peak RSS: %.1f MB\n", bench::PeakRssMb());
  std::filesystem::remove_all(dir);
  return count.ok() && *count == commits + fresh && many_ok ? 0 : 1;
}
