// bench/ingest: how fast the kcidb spool drains, and how long a file waits in live mode.
//
//   build/bench_ingest [--zip PATH] [--small N] [--live N] [--rate FILES_PER_S]
//
// Each phase runs in its own forked process (so peak RSS is per phase) on a fresh spool and
// SQLite database under $TMPDIR, with the real engine, store and handler, default flags
// (5 workers), every commit durable (synchronous=FULL, one fsync per group commit):
//   corpus: the 500 real submissions (../shared/kcidb/submissions.zip), drained in burst mode
//   small:  N one-test submissions (default 20,000), drained in burst mode
//   live:   N files (default 5,000) dropped at RATE/s (default 2,000) while the daemon watches;
//           latency from a file's rename into the spool to its handler starting, and to its
//           commit and move to archive/
//   fsync:  the per-file limit this disk would impose without group commit (write+fsync)
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/bench_util.h"
#include "core/allocator.h"
#include "core/spdlog.h"
#include "engine/engine.h"
#include "handlers/kcidb/demo.h"
#include "handlers/kcidb/kcidb_handler.h"
#include "store/store.h"

namespace fs = std::filesystem;
using namespace sluice;  // NOLINT
using Clock_ = std::chrono::steady_clock;
using sluice::bench::FreshDir;
using sluice::bench::InChild;
using sluice::bench::PeakRssMb;
using sluice::bench::Percentile;

namespace {

struct Drain {
  double seconds = 0;
  EngineCounters* counters = nullptr;
};

// Records when each file landed (its rename into the spool returned), started and finished;
// latencies are computed at the end, so a worker may start before the producer notes landing.
class LatencyObserver : public EngineObserver {
 public:
  void Landed(const std::string& name, Clock_::time_point t) { Put(&landed_, name, t); }
  void OnStarted(const Job& job) override { Put(&started_, job.name, Clock_::now()); }
  void OnFinished(const Job& job) override {
    Put(&done_, job.name, Clock_::now());
    finished_++;
  }
  // Milliseconds from landing to `events`, one per file.
  std::vector<double> Since(bool done) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<double> out;
    for (auto& [name, t] : done ? done_ : started_) {
      auto it = landed_.find(name);
      if (it == landed_.end()) continue;
      out.push_back(
          std::max(0.0, std::chrono::duration<double, std::milli>(t - it->second).count()));
    }
    return out;
  }
  std::atomic<int> finished_{0};

 private:
  using Times = std::unordered_map<std::string, Clock_::time_point>;
  void Put(Times* m, const std::string& name, Clock_::time_point t) {
    std::lock_guard<std::mutex> lock(mu_);
    (*m)[name] = t;
  }
  std::mutex mu_;
  Times landed_, started_, done_;
};

int RunEngine(const std::string& dir, bool burst, EngineObserver* observer,
              const std::function<void(Engine&)>& during, double* seconds, EngineCounters* out) {
  auto store = OpenStore("sqlite:" + dir + "/bench.db");
  auto handler = kcidb::KcidbHandler::Create({});
  if (!store.ok() || !handler.ok()) return 1;
  EngineOptions o;
  o.spool_dir = dir + "/spool";
  o.burst = burst;
  o.settle_s = 0;
  o.progress_interval_s = 3600;
  Engine engine(o, store->get(), handler->get(), Env::Default(), Clock::Real(), observer);
  auto t0 = Clock_::now();
  Status st = engine.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "start: %s\n", st.ToString().c_str());
    return 1;
  }
  if (during) during(engine);
  st = engine.Wait();
  *seconds = std::chrono::duration<double>(Clock_::now() - t0).count();
  out->succeeded = engine.counters().succeeded.load();
  out->failed = engine.counters().failed.load();
  out->objects = engine.counters().objects.load();
  out->bytes = engine.counters().bytes.load();
  return st.ok() ? 0 : 1;
}

void PrintDrain(const char* what, double secs, const EngineCounters& c) {
  uint64_t files = c.succeeded + c.failed;
  std::printf(
      "%-7s %llu files (%llu failed) in %.3f s: %.0f files/s, %.0f objects/s, %.1f MB/s; "
      "peak RSS %.0f MB\n",
      what, static_cast<unsigned long long>(files),
      static_cast<unsigned long long>(c.failed.load()), secs, files / secs, c.objects / secs,
      c.bytes / 1e6 / secs, PeakRssMb());
}

// Drains the spool under `dir` in burst mode, prints the figures, removes `dir`.
int DrainAndReport(const char* what, const std::string& dir) {
  double secs;
  EngineCounters c;
  int rc = RunEngine(dir, true, nullptr, nullptr, &secs, &c);
  PrintDrain(what, secs, c);
  fs::remove_all(dir);
  return rc;
}

int Corpus(const std::string& zip) {
  if (!fs::exists(zip)) {
    std::printf("corpus  skipped: %s not found\n", zip.c_str());
    return 0;
  }
  std::string dir = FreshDir("corpus");
  std::string cmd = "unzip -q -j -o '" + zip + "' '*.json' -d '" + dir + "/spool'";
  if (std::system(cmd.c_str()) != 0) return 1;
  return DrainAndReport("corpus", dir);
}

int Small(int n) {
  std::string dir = FreshDir("small");
  kcidb::DemoOptions d;
  d.count = n;
  d.minimal = true;
  if (!kcidb::WriteDemoSpool(Env::Default(), dir + "/spool", d).ok()) return 1;
  return DrainAndReport("small", dir);
}

int Live(int n, int rate) {
  std::string dir = FreshDir("live");
  std::string spool = dir + "/spool";
  fs::create_directories(dir + "/tmp");
  LatencyObserver obs;
  kcidb::DemoOptions d;
  d.minimal = true;
  std::mt19937_64 rng(7);
  std::vector<std::string> docs;
  for (int i = 0; i < n; ++i) docs.push_back(kcidb::DemoSubmission(d, i, rng));
  double secs;
  EngineCounters c;
  int rc = RunEngine(
      dir, false, &obs,
      [&](Engine& engine) {
        auto t0 = Clock_::now();
        for (int i = 0; i < n; ++i) {
          std::string name = "live-" + std::to_string(i) + ".json";
          std::string tmp = dir + "/tmp/" + name;  // written beside, renamed in (queuedir's way)
          (void)Env::Default()->WriteFile(tmp, docs[i]);
          std::rename(tmp.c_str(), (spool + "/" + name).c_str());
          obs.Landed(name, Clock_::now());
          std::this_thread::sleep_until(
              t0 + std::chrono::microseconds(static_cast<int64_t>((i + 1) * 1e6 / rate)));
        }
        while (obs.finished_ < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        engine.RequestStop();
      },
      &secs, &c);
  std::printf(
      "live    %d files at %d/s: landing->start p50 %.2f ms p99 %.2f ms; landing->committed "
      "and archived p50 %.2f ms p99 %.2f ms; peak RSS %.0f MB\n",
      n, rate, Percentile(obs.Since(false), 0.5), Percentile(obs.Since(false), 0.99),
      Percentile(obs.Since(true), 0.5), Percentile(obs.Since(true), 0.99), PeakRssMb());
  fs::remove_all(dir);
  return rc;
}

int Fsync() {
  std::string dir = FreshDir("fsync");
  const int n = 500;
  auto t0 = Clock_::now();
  for (int i = 0; i < n; ++i) {
    std::string p = dir + "/f" + std::to_string(i);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    (void)!::write(fd, "{}", 2);
    ::fsync(fd);
    ::close(fd);
  }
  double secs = std::chrono::duration<double>(Clock_::now() - t0).count();
  std::printf(
      "fsync   write+fsync of one small file: %.0f files/s (the limit without group "
      "commit)\n",
      n / secs);
  fs::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  spdlog::set_level(spdlog::level::warn);
  std::string zip = std::string(SLUICE_SOURCE_DIR) + "/../shared/kcidb/submissions.zip";
  int small = 20000, live = 5000, rate = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--zip") zip = argv[i + 1];
    if (a == "--small") small = std::atoi(argv[i + 1]);
    if (a == "--live") live = std::atoi(argv[i + 1]);
    if (a == "--rate") rate = std::atoi(argv[i + 1]);
  }
  std::printf("machine: %u cores; %s\n", std::thread::hardware_concurrency(),
              fs::temp_directory_path().c_str());
  int rc = 0;
  rc |= InChild([&] { return Corpus(zip); });
  rc |= InChild([&] { return Small(small); });
  rc |= InChild([&] { return Live(live, rate); });
  rc |= InChild([&] { return Fsync(); });
  return rc;
}
