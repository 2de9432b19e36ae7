// bench/exec: exec jobs running /bin/true, against a bare posix_spawn + wait loop.
//
//   build/bench_exec [--jobs N] [--concurrency 1,2,8]
//
// For each concurrency C: N spool files (default 2,000), each ["/bin/true"], drained in
// burst mode by an engine with C workers (every state change durable in SQLite, each file
// moved to archive/ after its commit), and, in the same run, C threads doing N bare
// posix_spawn("/bin/true") + waitpid in all. Prints jobs/s for both, the engine's time per
// job above the bare spawn, and the ratio (target: within 20%).
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/bench_util.h"
#include "core/spdlog.h"
#include "core/subprocess.h"
#include "engine/engine.h"
#include "handlers/exec/exec_handler.h"

extern char** environ;

using namespace sluice;
using Steady = std::chrono::steady_clock;

namespace {

double BareSpawn(int n, int threads) {
  std::atomic<int> next{0};
  auto t0 = Steady::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
      while (next.fetch_add(1) < n) {
        pid_t pid;
        if (posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) continue;
        int st;
        waitpid(pid, &st, 0);
      }
    });
  }
  for (auto& t : pool) t.join();
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

// The same through RunSubprocess (pipes, process group, output lines): the runner's share.
double Runner(int n, int threads) {
  std::atomic<int> next{0};
  auto t0 = Steady::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      SubprocessOptions o;
      o.argv = {"/bin/true"};
      o.on_line = [](int, std::string_view) {};
      while (next.fetch_add(1) < n) (void)RunSubprocess(o);
    });
  }
  for (auto& t : pool) t.join();
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

// Seconds to drain n /bin/true jobs with `workers` workers; -1 on error.
double Engine_(int n, int workers) {
  std::string dir = bench::FreshDir("exec");
  for (int i = 0; i < n; ++i) {
    std::ofstream(dir + "/spool/job" + std::to_string(i) + ".json") << "[\"/bin/true\"]";
  }
  auto store = OpenStore("sqlite:" + dir + "/bench.db");
  if (!store.ok()) return -1;
  ExecHandler handler({});
  EngineOptions o;
  o.spool_dir = dir + "/spool";
  o.burst = true;
  o.settle_s = 0;
  o.max_workers = workers;
  o.progress_interval_s = 3600;
  Engine engine(o, store->get(), &handler, Env::Default(), Clock::Real());
  auto t0 = Steady::now();
  if (!engine.Start().ok()) return -1;
  Status st = engine.Wait();
  double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  uint64_t ok = engine.counters().succeeded.load();
  std::filesystem::remove_all(dir);
  if (!st.ok() || ok != static_cast<uint64_t>(n)) {
    std::fprintf(stderr, "engine: %llu of %d succeeded: %s\n", static_cast<unsigned long long>(ok),
                 n, st.ToString().c_str());
    return -1;
  }
  return secs;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  int n = 2000;
  std::vector<int> levels = {1, 2, 8};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--jobs")) n = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--concurrency")) levels = bench::IntList(argv[i + 1]);
  }
  std::printf("machine: %u cores; %d jobs of /bin/true per level\n",
              std::thread::hardware_concurrency(), n);
  int rc = 0;
  for (int c : levels) {
    double bare = BareSpawn(n, c);
    double runner = Runner(n, c);
    double eng = Engine_(n, c);
    if (eng < 0) {
      rc = 1;
      continue;
    }
    std::printf(
        "concurrency %d: exec jobs %.0f/s, bare posix_spawn+wait %.0f/s (RunSubprocess alone "
        "%.0f/s); %.0f us per job above the bare spawn; engine/bare %.2f (target <= 1.20)\n",
        c, n / eng, n / bare, n / runner, (eng - bare) / n * 1e6 * c, eng / bare);
  }
  std::printf("peak RSS: %.1f MB\n", bench::PeakRssMb());
  return rc;
}
