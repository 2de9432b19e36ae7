// bench/postgres: the PostgreSQL store, in numbers, with a PostgreSQL queue beside it.
//
//   build/bench_postgres [--server CONNINFO] [--zip PATH] [--small N] [--noop N] [--peer N]
//
// Without --server, a private PostgreSQL 15 is started for the run (scripts/pg-test-server:
// fsync and synchronous_commit on) on this machine. Each phase runs in a forked child (its
// own peak RSS) on a database of its own, with the real engine, store and handler:
//   corpus: the 500 real submissions into the dashboard's tables, burst mode
//   small:  N one-test submissions (default 20,000), burst mode
//   noop:   N no-op jobs (default 100,000) end to end (queued, running, succeeded: each state
//           durable and an event), on PostgreSQL, then on SQLite for scale
//   peer:   N jobs (default 10,000) through a classic PostgreSQL queue: a producer inserting
//           one job per transaction, 4 workers claiming one with FOR UPDATE SKIP LOCKED and
//           marking it done, one transaction each (three commits per job, like Sluice's three
//           durable states)
// For each phase: wall time, rate, the phase's peak RSS, and PostgreSQL's CPU (its processes'
// user+system time during the phase) against the phase's own.
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_handlers.h"
#include "bench/bench_util.h"
#include "core/allocator.h"
#include "core/spdlog.h"
#include "engine/engine.h"
#include "handlers/kcidb/demo.h"
#include "handlers/kcidb/kcidb_handler.h"
#include "store/postgres/pg_conn.h"
#include "store/store.h"

namespace fs = std::filesystem;
using namespace sluice;  // NOLINT
using Steady = std::chrono::steady_clock;
using sluice::bench::ChildRun;
using sluice::bench::FreshDir;
using sluice::bench::InChildMeasured;
using sluice::bench::PeakRssMb;
using sluice::bench::ProcessCpuSeconds;

using bench::CountFinished;
using bench::NoopHandler;

namespace {

std::string g_server;  // libpq key=value without dbname
// Rates the phases (forked children) hand back: [0] noop on PostgreSQL, [1] the peer queue.
double* g_rates = nullptr;

// CPU seconds of every process named "postgres" on this machine, with the backends that
// have already exited (the postmaster's reaped children), so a phase whose connections close
// is still counted in full.
double PostgresCpu() {
  double total = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("postgres", 0) != 0) continue;
    total += ProcessCpuSeconds(std::stoi(pid), true);
  }
  return total;
}

std::string NewDatabase(const std::string& name) {
  auto admin = pg::Conn::Connect(g_server + " dbname=postgres");
  if (!admin.ok()) {
    std::fprintf(stderr, "%s\n", admin.status().ToString().c_str());
    std::exit(1);
  }
  std::string db = "bench_" + name + "_" + std::to_string(getpid());
  (void)admin->Exec("DROP DATABASE IF EXISTS " + db);
  auto made = admin->Exec("CREATE DATABASE " + db);
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
    std::exit(1);
  }
  return g_server + " dbname=" + db;
}

// Runs `phase` in a child; prints PostgreSQL's CPU beside the child's.
int Phase(const char* name, const std::function<int()>& phase) {
  double pg0 = PostgresCpu();
  ChildRun run = InChildMeasured(phase);
  double pg = PostgresCpu() - pg0;
  std::printf(
      "        %s: PostgreSQL CPU %.2f s (%.0f%% of the phase's CPU, %.2f cores), "
      "the phase's own CPU %.2f s, wall %.2f s\n",
      name, pg, run.cpu_s + pg > 0 ? 100 * pg / (run.cpu_s + pg) : 0, pg / run.wall_s, run.cpu_s,
      run.wall_s);
  return run.rc;
}

int Drain(const char* what, const std::string& dir, const std::string& database) {
  auto store = OpenStore(database);
  auto handler = kcidb::KcidbHandler::Create({});
  if (!store.ok() || !handler.ok()) {
    std::fprintf(stderr, "%s\n",
                 (store.ok() ? handler.status() : store.status()).ToString().c_str());
    return 1;
  }
  EngineOptions o;
  o.spool_dir = dir + "/spool";
  o.burst = true;
  o.settle_s = 0;
  o.progress_interval_s = 3600;
  Engine engine(o, store->get(), handler->get(), Env::Default(), Clock::Real(), nullptr);
  auto t0 = Steady::now();
  if (!engine.Start().ok()) return 1;
  Status st = engine.Wait();
  double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  const EngineCounters& c = engine.counters();
  uint64_t files = c.succeeded + c.failed;
  std::printf(
      "%-7s %llu files (%llu failed) into PostgreSQL in %.3f s: %.0f files/s, %.0f "
      "objects/s; peak RSS %.0f MB\n",
      what, static_cast<unsigned long long>(files),
      static_cast<unsigned long long>(c.failed.load()), secs, files / secs, c.objects / secs,
      PeakRssMb());
  fs::remove_all(dir);
  return st.ok() ? 0 : 1;
}

int Noop(const char* what, const std::string& database, int n) {
  std::string dir = FreshDir(std::string("noop-") + what);
  auto store = OpenStore(database == "sqlite" ? "sqlite:" + dir + "/bench.db" : database);
  if (!store.ok()) return 1;
  NoopHandler handler;
  CountFinished observer;
  EngineOptions o;
  o.spool_dir = dir + "/spool";
  o.settle_s = 0;
  o.progress_interval_s = 3600;
  Engine engine(o, store->get(), &handler, Env::Default(), Clock::Real(), &observer);
  if (!engine.Start().ok()) return 1;
  std::atomic<int64_t> submitted{0};
  auto t0 = Steady::now();
  for (int i = 0; i < n; ++i) {
    while (submitted - observer.finished > 20000) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    Job j;
    j.kind = "noop";
    j.payload = "{}";
    engine.SubmitAsync(std::move(j), [](Result<SubmitResult>) {});
    submitted++;
  }
  while (observer.finished < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  std::printf(
      "noop    %d no-op jobs end to end on %s (queued, running, succeeded: each durable, "
      "each an event) in %.2f s: %.0f jobs/s; %llu group commits; peak RSS %.0f MB\n",
      n, what, secs, n / secs, static_cast<unsigned long long>(engine.counters().commits.load()),
      PeakRssMb());
  if (database != "sqlite") g_rates[0] = n / secs;
  engine.RequestStop();
  (void)engine.Wait();
  fs::remove_all(dir);
  return 0;
}

int Peer(int n) {
  std::string database = NewDatabase("peer");
  auto c = pg::Conn::Connect(database);
  if (!c.ok()) return 1;
  if (!c->Script("CREATE TABLE q (id bigserial PRIMARY KEY, payload jsonb NOT NULL, state text "
                 "NOT NULL DEFAULT 'queued'); CREATE INDEX q_queued ON q (id) WHERE state = "
                 "'queued'")
           .ok()) {
    return 1;
  }
  std::atomic<int> done{0};
  std::atomic<bool> produced{false};
  auto t0 = Steady::now();
  std::thread producer([&] {
    auto p = pg::Conn::Connect(database);
    for (int i = 0; i < n; ++i) (void)p->Exec("INSERT INTO q (payload) VALUES ('{}')");
    produced = true;
  });
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      auto conn = pg::Conn::Connect(database);
      while (done < n) {
        auto claimed = conn->Exec(
            "UPDATE q SET state = 'running' WHERE id = (SELECT id FROM q WHERE state = 'queued' "
            "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id");
        if (!claimed.ok() || claimed->size() == 0) {
          if (produced && done >= n) break;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        (void)conn->Exec("UPDATE q SET state = 'done' WHERE id = $1",
                         {pg::Param(claimed->Int(0, 0))});
        done++;
      }
    });
  }
  producer.join();
  for (auto& t : workers) t.join();
  double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  std::printf(
      "peer    %d jobs through a PostgreSQL FOR UPDATE SKIP LOCKED queue (1 producer, 4 "
      "workers, 3 commits per job) in %.2f s: %.0f jobs/s; peak RSS %.0f MB\n",
      n, secs, n / secs, PeakRssMb());
  g_rates[1] = n / secs;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  spdlog::set_level(spdlog::level::warn);
  std::string zip = std::string(SLUICE_SOURCE_DIR) + "/../shared/kcidb/submissions.zip";
  int small = 20000, noop = 100000, peer = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--server") g_server = argv[i + 1];
    if (a == "--zip") zip = argv[i + 1];
    if (a == "--small") small = std::atoi(argv[i + 1]);
    if (a == "--noop") noop = std::atoi(argv[i + 1]);
    if (a == "--peer") peer = std::atoi(argv[i + 1]);
  }
  std::string script = std::string(SLUICE_SOURCE_DIR) + "/scripts/pg-test-server";
  std::string own;
  if (g_server.empty()) {
    own = (fs::temp_directory_path() / ("sluice-bench-pg-" + std::to_string(getpid()))).string();
    if (std::system((script + " start " + own + " >/dev/null").c_str()) != 0) return 1;
    std::ifstream port(own + "/port");
    std::string p;
    port >> p;
    g_server = "host=" + own + " port=" + p + " user=pgtest";
  }
  std::printf("machine: %u cores; PostgreSQL %s\n", std::thread::hardware_concurrency(),
              own.empty() ? "given" : "started here (fsync on, synchronous_commit on)");
  g_rates = static_cast<double*>(
      mmap(nullptr, 2 * sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (g_rates == MAP_FAILED) return 1;
  int rc = 0;
  if (fs::exists(zip)) {
    std::string db = NewDatabase("corpus");
    rc |= Phase("corpus", [&] {
      std::string dir = FreshDir("pgcorpus");
      std::string cmd = "unzip -q -j -o '" + zip + "' '*.json' -d '" + dir + "/spool'";
      if (std::system(cmd.c_str()) != 0) return 1;
      return Drain("corpus", dir, db);
    });
  }
  std::string small_db = NewDatabase("small");
  std::string small_dir = FreshDir("pgsmall");
  kcidb::DemoOptions d;
  d.count = small;
  d.minimal = true;
  if (!kcidb::WriteDemoSpool(Env::Default(), small_dir + "/spool", d).ok()) return 1;
  rc |= Phase("small", [&] { return Drain("small", small_dir, small_db); });
  std::string noop_db = NewDatabase("noop");
  rc |= Phase("noop", [&] { return Noop("PostgreSQL", noop_db, noop); });
  rc |= Phase("noop-sqlite", [&] { return Noop("SQLite", "sqlite", noop); });
  rc |= Phase("peer", [&] { return Peer(peer); });
  if (g_rates[0] > 0 && g_rates[1] > 0) {
    std::printf("ratio   no-op jobs on Sluice's PostgreSQL store / the SKIP LOCKED queue: %.1fx\n",
                g_rates[0] / g_rates[1]);
  }
  if (!own.empty()) {
    (void)std::system((script + " stop " + own + " >/dev/null").c_str());
    fs::remove_all(own);
  }
  return rc;
}
