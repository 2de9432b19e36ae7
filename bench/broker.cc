// bench/broker: tickets through the brokers, in numbers.
//
//   build/bench_broker [--redis URL] [--tickets N] [--consumers C] [--shards S]
//
// Without --redis, a private Redis 7 is started for the run (scripts/redis-test-server, AOF
// everysec, unix socket and loopback). Each phase runs in a forked child (its own peak RSS):
//   local: N tickets pushed, then taken by C consumer threads (pop, ack), in-process broker
//   redis: the same through the Redis Streams broker (one process, C threads), leases on
//   latency: 2,000 tickets pushed one at a time 2 ms apart while C threads pop and ack:
//            push to pop latency, p50/p99/max
// For each: tickets/s, and Redis's CPU (its process's user+system time) beside the phase's.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "broker/local/local_broker.h"
#include "broker/redis/redis_broker.h"
#include "core/spdlog.h"

using namespace sluice;  // NOLINT
using Steady = std::chrono::steady_clock;
using sluice::bench::ChildRun;
using sluice::bench::InChildMeasured;
using sluice::bench::PeakRssMb;
using sluice::bench::Percentile;
using sluice::bench::ProcessCpuSeconds;

namespace {

std::string g_url;
pid_t g_redis_pid = 0;
int g_shards = 8;

int Phase(const char* name, const std::function<int()>& phase) {
  double redis0 = g_redis_pid > 0 ? ProcessCpuSeconds(g_redis_pid, false) : 0;
  ChildRun run = InChildMeasured(phase);
  double redis = g_redis_pid > 0 ? ProcessCpuSeconds(g_redis_pid, false) - redis0 : 0;
  std::printf("        %s: Redis CPU %.2f s, the phase's own CPU %.2f s, wall %.2f s\n", name,
              redis, run.cpu_s, run.wall_s);
  return run.rc;
}

std::unique_ptr<Broker> Open(bool redis, const std::string& prefix) {
  if (!redis) {
    BrokerOptions o;
    o.lease_ms = 30'000;
    return std::make_unique<LocalBroker>(Clock::Real(), o);
  }
  RedisBrokerOptions o;
  o.url = g_url;
  o.prefix = prefix;
  o.shards = g_shards;
  o.lease_ms = 30'000;
  auto b = RedisBroker::Open(o, Clock::Real());
  if (!b.ok()) {
    std::fprintf(stderr, "%s\n", b.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*b);
}

int Throughput(bool redis, int n, int consumers) {
  auto broker = Open(redis, "bench-tp-" + std::to_string(getpid()));
  auto t0 = Steady::now();
  for (int i = 1; i <= n; ++i) broker->Push({i, 0, i, 0});
  double push_s = std::chrono::duration<double>(Steady::now() - t0).count();
  std::atomic<int> done{0};
  auto t1 = Steady::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&] {
      while (done < n) {
        auto t = broker->Pop(std::chrono::milliseconds(200));
        if (!t) continue;
        broker->Ack(*t);
        done++;
      }
    });
  }
  for (auto& t : threads) t.join();
  double pop_s = std::chrono::duration<double>(Steady::now() - t1).count();
  std::printf(
      "%-7s %d tickets: push %.0f/s (one at a time), pop+ack %.0f/s with %d consumers; "
      "peak RSS %.0f MB\n",
      redis ? "redis" : "local", n, n / push_s, n / pop_s, consumers, PeakRssMb());
  broker->Close();
  return 0;
}

int Latency(int consumers) {
  auto broker = Open(true, "bench-lat-" + std::to_string(getpid()));
  constexpr int kN = 2000;
  std::vector<Steady::time_point> pushed(kN + 1);
  std::vector<double> lat;
  std::mutex mu;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&] {
      while (done < kN) {
        auto t = broker->Pop(std::chrono::milliseconds(200));
        if (!t) continue;
        auto now = Steady::now();
        broker->Ack(*t);
        std::lock_guard<std::mutex> lock(mu);
        lat.push_back(std::chrono::duration<double, std::milli>(now - pushed[t->job_id]).count());
        done++;
      }
    });
  }
  for (int i = 1; i <= kN; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      pushed[i] = Steady::now();
    }
    broker->Push({i, 0, i, 0});
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& t : threads) t.join();
  std::printf(
      "latency %d tickets at ~500/s through Redis, push to pop: p50 %.2f ms, p99 %.2f ms, "
      "max %.2f ms\n",
      kN, Percentile(lat, 0.5), Percentile(lat, 0.99), Percentile(lat, 1.0));
  broker->Close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  int n = 50000, consumers = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--redis") g_url = argv[i + 1];
    if (a == "--tickets") n = std::atoi(argv[i + 1]);
    if (a == "--consumers") consumers = std::atoi(argv[i + 1]);
    if (a == "--shards") g_shards = std::atoi(argv[i + 1]);
  }
  std::string script = std::string(SLUICE_SOURCE_DIR) + "/scripts/redis-test-server";
  std::string own;
  if (g_url.empty()) {
    own = "/tmp/sluice-bench-redis-" + std::to_string(getpid());
    FILE* p = popen((script + " start " + own).c_str(), "r");
    char buf[256] = {};
    if (p == nullptr || std::fgets(buf, sizeof(buf), p) == nullptr) return 1;
    pclose(p);
    g_url = buf;
    while (!g_url.empty() && (g_url.back() == '\n' || g_url.back() == ' ')) g_url.pop_back();
    std::ifstream pidfile(own + "/redis.pid");
    pidfile >> g_redis_pid;
  }
  std::printf("machine: %u cores; Redis %s, %d shards\n", std::thread::hardware_concurrency(),
              own.empty() ? "given" : "started here (AOF everysec)", g_shards);
  int rc = 0;
  rc |= Phase("local", [&] { return Throughput(false, n, consumers); });
  rc |= Phase("redis", [&] { return Throughput(true, n, consumers); });
  rc |= Phase("latency", [&] { return Latency(consumers); });
  if (!own.empty()) {
    (void)std::system((script + " stop " + own + " >/dev/null").c_str());
    std::filesystem::remove_all(own);
  }
  return rc;
}
