#!/usr/bin/env python3
"""bench/cluster: HTTP jobs through a cluster on this machine, in numbers.

    bench/cluster.py build/sluice [--jobs N] [--workers W] [--clients C]

Starts a private PostgreSQL and Redis (scripts/pg-test-server, scripts/redis-test-server:
fsync on, AOF everysec), then for each setup sends N small KCIDB submissions (one test
each) to `POST /api/v1/jobs` from C keep-alive clients, and waits until every job ended:
  single:  one `sluice serve` on PostgreSQL, no broker (its own workers)
  cluster: one `sluice serve --broker` and W `sluice worker` processes
For each: submissions/s (each answered once its registration is durable), jobs/s end to end
(first submission to last job ended), the latency from a job's registration to its end
(p50/p95/p99, from the database's timestamps), how the jobs spread over the processes, and
each process's peak RSS. No peer runs here: Arthur's RQ workers need PyPI packages this
machine cannot install.
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from procstat import cpu_seconds, peak_rss_mb, pct  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


def psql(conninfo, sql):
    return run("psql", conninfo, "-Atqc", sql)


def submission(i):
    return {"version": {"major": 5, "minor": 3},
            "tests": [{"id": "bench:t%d" % i, "origin": "bench", "build_id": "bench:b",
                       "status": "PASS"}]}


def submit_all(port, n, clients):
    """Sends n jobs from `clients` threads over keep-alive; seconds taken."""
    bodies = [json.dumps({"kind": "kcidb", "payload": submission(i)}).encode()
              for i in range(n)]
    errors = []

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(k, n, clients):
            conn.request("POST", "/api/v1/jobs", bodies[i],
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 201:
                errors.append(resp.status)
        conn.close()

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("bench: %d submissions refused (%s)" % (len(errors), errors[:3]))
    return time.time() - t0


def server_cpu(name):
    """CPU seconds of every process whose command is `name` (with reaped children)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as f:
                if not f.read().startswith(name):
                    continue
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def wait_api(log_path, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(log_path, errors="replace") as f:
            for line in f:
                if "api: listening on http://" in line:
                    return int(line.rsplit(":", 1)[1])
        time.sleep(0.05)
    raise SystemExit("bench: the API did not start:\n" + open(log_path).read()[-2000:])


class Setup:
    """A database, a `serve` with the API (and, with a broker, workers started on demand)."""

    def __init__(self, name, binary, server, redis_url, work, serve_kind="kcidb", lease="15"):
        self.name, self.binary, self.work, self.redis_url = name, binary, work, redis_url
        db = "bench_%s" % name
        psql(server + " dbname=postgres", "DROP DATABASE IF EXISTS %s" % db)
        psql(server + " dbname=postgres", "CREATE DATABASE %s" % db)
        self.conninfo = server + " dbname=" + db
        self.lease = lease
        spool = os.path.join(work, name + "-spool")
        os.makedirs(spool)
        log = os.path.join(work, name + "-serve.log")
        cluster = ["--broker", redis_url, "--broker-prefix", name, "--lease", lease] \
            if redis_url else []
        self.serve = subprocess.Popen(
            [binary, "serve", "--spool-dir", spool, "--database", self.conninfo, "--port", "0",
             "--max-workers", "4", "--kind", serve_kind] + cluster,
            stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.port = wait_api(log)
        self.workers = []

    def worker(self, *extra):
        log = os.path.join(self.work, "%s-worker%d.log" % (self.name, len(self.workers)))
        p = subprocess.Popen(
            [self.binary, "worker", "-d", self.conninfo, "--broker", self.redis_url,
             "--broker-prefix", self.name, "--lease", self.lease, "--max-workers", "4",
             "--stderr-level", "warning"] + list(extra),
            stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.workers.append(p)
        return p

    def q(self, sql):
        return psql(self.conninfo, sql)

    def wait_ended(self, n):
        while int(self.q("SELECT COUNT(*) FROM sluice.jobs WHERE state IN "
                         "('succeeded', 'failed')")) < n:
            time.sleep(0.02)

    def close(self):
        for p in [self.serve] + self.workers:
            if p.poll() is None:
                p.terminate()
        for p in [self.serve] + self.workers:
            p.wait(timeout=60)


def single(binary, server, work, args):
    """One serve, no broker: its own workers run the jobs as they come."""
    s = Setup("single", binary, server, None, work)
    try:
        pg0 = server_cpu("postgres")
        t0 = time.time()
        submit_s = submit_all(s.port, args.jobs, args.clients)
        s.wait_ended(args.jobs)
        total = time.time() - t0
        print("single process, no broker: %d jobs submitted at %.0f/s, all ended in %.2f s "
              "(%.0f jobs/s); CPU per 1,000 jobs: sluice %.2f s, PostgreSQL %.2f s; peak RSS "
              "%.0f MB" % (args.jobs, args.jobs / submit_s, total, args.jobs / total,
                           cpu_seconds(s.serve.pid) / args.jobs * 1000,
                           (server_cpu("postgres") - pg0) / args.jobs * 1000,
                           peak_rss_mb(s.serve.pid)))
        return args.jobs / total
    finally:
        s.close()


def drain(binary, server, redis_url, work, args, n_workers):
    """N jobs queued first (the serve runs exec jobs only), then n_workers workers drain them."""
    s = Setup("drain%d" % n_workers, binary, server, redis_url, work, serve_kind="exec")
    try:
        submit_s = submit_all(s.port, args.jobs, args.clients)
        pg0, redis0 = server_cpu("postgres"), server_cpu("redis-server")
        t0 = time.time()
        for _ in range(n_workers):
            s.worker()
        s.wait_ended(args.jobs)
        total = time.time() - t0
        for i, p in enumerate(s.workers):
            if p.poll() is not None:
                log = os.path.join(work, "%s-worker%d.log" % (s.name, i))
                raise SystemExit("bench: a worker exited (%s):\n%s" % (
                    p.returncode, open(log).read()[-3000:]))
        cpu = sum(cpu_seconds(p.pid) for p in s.workers)
        pg_cpu = server_cpu("postgres") - pg0
        redis_cpu = server_cpu("redis-server") - redis0
        spread = s.q("SELECT COUNT(*) FROM sluice.jobs GROUP BY lease_owner ORDER BY 1 DESC")
        failed = int(s.q("SELECT COUNT(*) FROM sluice.jobs WHERE state = 'failed'"))
        print("cluster, %d worker process(es) x 4 threads: %d queued jobs drained in %.2f s = "
              "%.0f jobs/s (%d failed; per process %s); CPU per 1,000 jobs: workers %.2f s, "
              "PostgreSQL %.2f s, Redis %.2f s; worker peak RSS %s MB; (submitted at %.0f/s)" % (
                  n_workers, args.jobs, total, args.jobs / total, failed,
                  "/".join(spread.split()), cpu / args.jobs * 1000,
                  pg_cpu / args.jobs * 1000, redis_cpu / args.jobs * 1000,
                  "/".join("%.0f" % peak_rss_mb(p.pid) for p in s.workers),
                  args.jobs / submit_s))
        return args.jobs / total
    finally:
        s.close()


def latency(binary, server, redis_url, work, args):
    """Submit -> start at a steady rate, with 2 workers waiting."""
    s = Setup("latency", binary, server, redis_url, work, serve_kind="exec")
    try:
        s.worker()
        s.worker()
        time.sleep(1)
        n = int(args.rate * 5)
        bodies = [json.dumps({"kind": "kcidb", "payload": submission(i)}).encode()
                  for i in range(n)]
        t0 = time.time()

        def client(k):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            for i in range(k, n, args.clients):
                delay = t0 + i / args.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                conn.request("POST", "/api/v1/jobs", bodies[i],
                             {"Content-Type": "application/json"})
                conn.getresponse().read()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        achieved = n / (time.time() - t0)
        s.wait_ended(n)
        rows = s.q("SELECT last_tried - created_at FROM sluice.jobs ORDER BY 1")
        lat = [int(x) / 1000.0 for x in rows.split()]
        print("submit -> start at %.0f jobs/s (asked %.0f), 2 worker processes: p50 %.1f ms, "
              "p95 %.1f ms, p99 %.1f ms (registration committed to claim committed)" % (
                  achieved, args.rate, pct(lat, 0.5), pct(lat, 0.95),
                  pct(lat, 0.99)))
    finally:
        s.close()


def recovery(binary, server, redis_url, work, args):
    """A worker killed (-9) while it runs a job: when another worker claims it."""
    s = Setup("recovery", binary, server, redis_url, work, lease="2")
    try:
        a = s.worker("--kind", "exec")
        req = urllib.request.Request(
            "http://127.0.0.1:%d/api/v1/jobs" % s.port,
            data=json.dumps({"kind": "exec", "payload": ["/bin/sleep", "1000"]}).encode(),
            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        while s.q("SELECT state FROM sluice.jobs").strip() != "running":
            time.sleep(0.01)
        b = s.worker("--kind", "exec")
        time.sleep(0.5)
        a.kill()
        killed = time.time()
        while (":%d:" % b.pid) not in s.q("SELECT lease_owner FROM sluice.jobs"):
            time.sleep(0.01)
        print("a killed worker's job claimed elsewhere %.2f s after the kill (--lease 2: "
              "target lease + 1 s)" % (time.time() - killed))
        b.kill()  # it runs `sleep 1000`: a clean stop would wait for it
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rate", type=float, default=1000, help="latency phase: jobs/s")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="sluice-bench-cluster-")
    os.chmod(work, 0o755)
    pg_dir, redis_dir = os.path.join(work, "pg"), os.path.join(work, "redis")
    try:
        run(os.path.join(ROOT, "scripts", "pg-test-server"), "start", pg_dir)
        server = "host=%s port=%s user=pgtest" % (pg_dir, open(os.path.join(pg_dir, "port"))
                                                  .read().strip())
        redis_url = run(os.path.join(ROOT, "scripts", "redis-test-server"), "start",
                        redis_dir).strip() + "/0"
        print("bench/cluster: %d cores; PostgreSQL 15 and Redis on this machine; %d clients" % (
            os.cpu_count(), args.clients))
        base = single(binary, server, work, args)
        for n in (1, 2, 4):
            rate = drain(binary, server, redis_url, work, args, n)
            print("    %.2fx the single process" % (rate / base))
        latency(binary, server, redis_url, work, args)
        recovery(binary, server, redis_url, work, args)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "redis-test-server"), "stop", redis_dir],
                       capture_output=True)
        subprocess.run([os.path.join(ROOT, "scripts", "pg-test-server"), "stop", pg_dir],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
