// bench/api: the job server's numbers.
//
//   build/bench_api [--submit N] [--conns 32,128] [--noop N] [--sse 1000,10000] [--sse-jobs N]
//
// Every phase runs a real engine, SQLite store (every commit durable: synchronous=FULL) and
// HTTP server in a forked child, with a no-op handler (kind "noop"):
//   submit: N jobs (default 40,000) POSTed over HTTP/1.1 keep-alive by 2 client threads, 32
//           connections each (64 requests in flight), then 128 each (256 in flight); each
//           answer comes after its commit; the jobs run meanwhile. Then the same with the
//           jobs scheduled an hour ahead (run_at): the registrations alone;
//           then the floor under it in the same run (bench/submit_floor.h: the same
//           clients against a bare server, plain and with an fdatasync per epoll round)
//   noop:   N no-op jobs (default 100,000) submitted inside the process, from registration to
//           succeeded, every state change (queued, running, succeeded) durable and an event
//   sse:    C clients (1,000 and 10,000) on GET /api/v1/events; jobs submitted over HTTP at
//           50/s; latency from the POST to each client reading the job's "queued" frame
//           (commit + fan-out + delivery), and the server's peak RSS; then the machine's
//           floor for it in the same run (bench/fanout_floor.h: bare sends, no server)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/http_server.h"
#include "api/router.h"
#include "bench/bench_handlers.h"
#include "bench/bench_util.h"
#include "bench/fanout_floor.h"
#include "bench/submit_floor.h"
#include "core/allocator.h"
#include "core/spdlog.h"
#include "engine/engine.h"
#include "store/store.h"

using namespace sluice;  // NOLINT
using bench::FreshDir;
using bench::InChild;
using bench::PeakRssMb;
using bench::Percentile;
using Steady = std::chrono::steady_clock;

using bench::CountFinished;
using bench::NoopHandler;

namespace {

// A daemon in this process: engine + router + HTTP server on an ephemeral port.
struct Server {
  std::string dir;
  std::unique_ptr<Store> store;
  NoopHandler handler;
  CountFinished observer;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<api::Router> router;
  std::unique_ptr<api::HttpServer> http;

  bool Start(const std::string& name) {
    dir = FreshDir(name);
    auto s = OpenStore("sqlite:" + dir + "/bench.db");
    if (!s.ok()) return false;
    store = std::move(*s);
    EngineOptions o;
    o.spool_dir = dir + "/spool";
    o.settle_s = 0;
    o.progress_interval_s = 3600;
    engine = std::make_unique<Engine>(o, store.get(), &handler, Env::Default(), Clock::Real(),
                                      &observer);
    if (!engine->Start().ok()) return false;
    api::RouterDeps deps;
    deps.store = store.get();
    Engine* e = engine.get();
    deps.submit = [e](Job job, api::RouterDeps::SubmitDone done) {
      e->SubmitAsync(std::move(job), [done = std::move(done)](Result<SubmitResult> r) {
        if (!r.ok()) return done(r.status());
        done(std::make_pair(std::move(r->job), r->created));
      });
    };
    deps.hub = &engine->events();
    // Room for the sse phase's 10,000 clients (an operator gives --max-sse-clients; the
    // default, 1,000, answered the 9,000 others 503 and the phase counted 10% delivered).
    deps.max_streams = 20000;
    router = std::make_unique<api::Router>(deps);
    api::HttpServerOptions ho;
    ho.port = 0;
    auto h = api::HttpServer::Start(ho, router.get());
    if (!h.ok()) return false;
    http = std::move(*h);
    return true;
  }
  void Stop() {
    http->Stop();
    engine->RequestStop();
    (void)engine->Wait();
    std::filesystem::remove_all(dir);
  }
};

// The body of a submission scheduled an hour from now: it is registered (durably) and waits,
// so the phase measures the submission path alone, not also the jobs running beside it.
std::string HeldBody() {
  std::time_t later = std::time(nullptr) + 3600;
  std::tm tm{};
  gmtime_r(&later, &tm);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string body = bench::SubmitBody();  // the same submission, its object reopened
  body.pop_back();
  return body + R"(,"run_at":")" + when + "\"}";
}

// One set of clients against a fresh server; prints its line and returns its run.
bench::SubmitRun SubmitOnce(int n, int conns, bool held) {
  bench::SubmitRun run;
  double rss = 0;
  unsigned long long commits = 0;
  double cpu_us = 0;    // CPU of the whole process (server and clients) per submission
  std::string threads;  // the server's threads, per submission
  {
    Server s;
    if (!s.Start("submit")) {
      run.errors = 1;
      return run;
    }
    double cpu0 = bench::ProcessCpuSeconds(getpid(), false);
    auto threads0 = bench::ThreadsByName();
    run =
        bench::RunSubmitClients(s.http->port(), n, conns, held ? HeldBody() : bench::SubmitBody());
    cpu_us = (bench::ProcessCpuSeconds(getpid(), false) - cpu0) * 1e6 /
             std::max<size_t>(run.latencies_ms.size(), 1);
    threads = bench::ThreadUseLine(threads0, bench::ThreadsByName(), run.latencies_ms.size());
    rss = PeakRssMb();
    commits = s.engine->counters().commits.load();
    s.Stop();
  }
  std::printf(
      "submit  %zu jobs over HTTP (2 threads x %d keep-alive connections; %s) in %.2f s: %.0f "
      "submissions/s, each durable before its 201; latency p50 %.2f ms p99 %.2f ms; %d errors; "
      "%llu group commits; %.0f us of CPU per submission (server and clients); peak RSS %.0f MB\n",
      run.latencies_ms.size(), conns,
      held ? "jobs scheduled an hour ahead: registrations only" : "the jobs run meanwhile",
      run.secs, run.per_s(), Percentile(run.latencies_ms, 0.5), Percentile(run.latencies_ms, 0.99),
      run.errors, commits, cpu_us, rss);
  std::printf("threads per submission: %s\n", threads.c_str());
  std::fflush(stdout);
  return run;
}

int SubmitPhase(int n, int conns) {
  bench::SubmitRun run = SubmitOnce(n, conns, false);
  bench::SubmitRun held = SubmitOnce(n, conns, true);
  int errors = run.errors + held.errors;
  for (bool durable : {false, true}) {
    std::string log = durable ? bench::FreshDir("submit-floor") + "/log" : "";
    bench::SubmitRun bare = bench::MeasureSubmitFloor(n, conns, log);
    if (durable) std::filesystem::remove_all(std::filesystem::path(log).parent_path());
    std::printf(
        "floor   the same clients, a bare one-thread server (a fixed 201 per request; %s): %.0f "
        "requests/s; latency p50 %.2f ms p99 %.2f ms; %d errors; Sluice at %.0f%% of it\n",
        durable ? "the bodies of each epoll round written and fdatasync'd before their answers"
                : "nothing stored",
        bare.per_s(), Percentile(bare.latencies_ms, 0.5), Percentile(bare.latencies_ms, 0.99),
        bare.errors, bare.per_s() > 0 ? 100.0 * run.per_s() / bare.per_s() : 0.0);
    errors += bare.errors;
  }
  return errors == 0 ? 0 : 1;
}

int NoopPhase(int n) {
  Server s;
  if (!s.Start("noop")) return 1;
  std::atomic<int64_t> submitted{0};
  auto t0 = Steady::now();
  for (int i = 0; i < n; ++i) {
    // Keep at most 20,000 in flight, as a queue with producers faster than its workers would.
    while (submitted - s.observer.finished > 20000)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    Job j;
    j.kind = "noop";
    j.payload = "{}";
    s.engine->SubmitAsync(std::move(j), [&](Result<SubmitResult>) {});
    submitted++;
  }
  while (s.observer.finished < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  std::printf(
      "noop    %d no-op jobs end to end (queued, running, succeeded: each durable, each an event) "
      "in %.2f s: %.0f jobs/s; %llu group commits; peak RSS %.0f MB\n",
      n, secs, n / secs, static_cast<unsigned long long>(s.engine->counters().commits.load()),
      PeakRssMb());
  s.Stop();
  return 0;
}

int SsePhase(int clients, int jobs) {
  // The server runs in a child process so its RSS is its own.
  int ports[2];
  if (pipe(ports) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    close(ports[0]);
    Server s;
    if (!s.Start("sse")) _exit(1);
    uint16_t port = s.http->port();
    if (write(ports[1], &port, sizeof(port)) != sizeof(port)) _exit(1);
    while (true) pause();  // until the parent kills it
  }
  close(ports[1]);
  uint16_t port = 0;
  if (read(ports[0], &port, sizeof(port)) != sizeof(port)) return 1;

  auto readers = std::make_unique<bench::FrameReaders>();
  std::string get = "GET /api/v1/events?type=job.queued HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (int i = 0; i < clients; ++i) {
    int fd = bench::ConnectLoopback(port);
    if (fd < 0) {
      std::fprintf(stderr, "connect %d failed: %s\n", i, std::strerror(errno));
      return 1;
    }
    readers->Add(fd);
    if (write(fd, get.data(), get.size()) < 0) return 1;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // all subscribed
  std::mutex mu;
  std::unordered_map<int64_t, Steady::time_point> sent_at;  // job id -> POST time
  std::vector<double> lat_ms;
  lat_ms.reserve(static_cast<size_t>(clients) * jobs);
  std::atomic<bool> producing{true};
  std::thread producer([&] {
    int fd = bench::ConnectLoopback(port);
    std::string req = bench::PostRequest(), buf;
    for (int i = 0; i < jobs; ++i) {
      auto t = Steady::now();
      if (write(fd, req.data(), req.size()) < 0) break;
      // The id comes in the answer; record the time under it.
      while (buf.find("\r\n\r\n") == std::string::npos ||
             buf.find("\"id\":") == std::string::npos) {
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
      }
      int64_t id = std::atoll(buf.c_str() + buf.find("\"id\":") + 5);
      {
        std::lock_guard<std::mutex> lock(mu);
        sent_at[id] = t;
      }
      std::string b2;
      buf.swap(b2);
      std::this_thread::sleep_until(t + std::chrono::milliseconds(20));
    }
    close(fd);
    producing = false;
  });
  size_t expected = static_cast<size_t>(clients) * jobs;
  auto seen = readers->Read(expected, Steady::now() + std::chrono::seconds(60 + jobs / 50));
  size_t got = seen.size();
  producer.join();
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [id, t] : seen) {
      auto it = sent_at.find(id);
      if (it != sent_at.end()) {
        lat_ms.push_back(std::chrono::duration<double, std::milli>(t - it->second).count());
      }
    }
  }
  double rss = 0;
  std::ifstream status("/proc/" + std::to_string(child) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) rss = std::atof(line.c_str() + 6) / 1024;
  }
  readers.reset();  // the floor needs as many descriptors again
  close(ports[0]);
  kill(child, SIGKILL);
  int st = 0;
  waitpid(child, &st, 0);
  std::printf(
      "sse     %d clients, %d jobs at 50/s: %zu of %zu frames delivered; POST -> frame read "
      "p50 %.2f ms p99 %.2f ms max %.2f ms; server peak RSS %.0f MB\n",
      clients, jobs, got, expected, Percentile(lat_ms, 0.5), Percentile(lat_ms, 0.99),
      Percentile(lat_ms, 1.0), rss);
  std::fflush(stdout);
  bench::FanoutFloor bare = bench::MeasureFanoutFloor(clients, jobs);
  std::printf(
      "floor   %d clients, bare sends on one thread (no HTTP, no store), an event every 20 ms: "
      "%zu frames; due -> read p50 %.2f ms p99 %.2f ms max %.2f ms; Sluice p99 / floor p99 "
      "%.2f\n",
      clients, bare.frames, bare.p50_ms, bare.p99_ms, bare.max_ms,
      bare.p99_ms > 0 ? Percentile(lat_ms, 0.99) / bare.p99_ms : 0.0);
  return got == expected && bare.frames == expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  spdlog::set_level(spdlog::level::warn);
  int submit = 40000, noop = 100000, sse_jobs = 100;
  std::vector<int> sse = {1000, 10000};
  std::vector<int> conns = {32, 128};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--submit") submit = std::atoi(argv[i + 1]);
    if (a == "--conns") conns = bench::IntList(argv[i + 1]);
    if (a == "--noop") noop = std::atoi(argv[i + 1]);
    if (a == "--sse-jobs") sse_jobs = std::atoi(argv[i + 1]);
    if (a == "--sse") sse = bench::IntList(argv[i + 1]);
  }
  rlimit lim{65536, 65536};
  setrlimit(RLIMIT_NOFILE, &lim);
  std::printf("machine: %u cores; %s\n", std::thread::hardware_concurrency(),
              std::filesystem::temp_directory_path().c_str());
  int rc = 0;
  // Each phase starts with the disk idle: the writeback of the one before (the no-op phase
  // leaves about 100 MB) stalled the next phase's fsyncs (an sse p99 of 170 ms, not 17).
  for (int c : conns) {
    if (submit > 0) rc |= InChild([&] { return SubmitPhase(submit, c); });
    sync();
  }
  if (noop > 0) rc |= InChild([&] { return NoopPhase(noop); });
  sync();
  for (int c : sse) {
    rc |= InChild([&] { return SsePhase(c, sse_jobs); });
    sync();
  }
  return rc;
}
