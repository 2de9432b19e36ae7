#!/usr/bin/python3
"""bench/hostile: what hostile clients cost the daemon, in numbers.

  bench/hostile.py build/sluice [--readers N] [--jobs N]

1. Idle event readers: N readers (default 1,000) that never read, while N_JOBS exec jobs
   (default 500) each write 20 lines of 200 bytes: RSS before and after, and per reader.
2. The descriptor limit: a hard limit of 64 and 200 connections trying to get in for 5 s:
   CPU the daemon spent, log lines it wrote, and the latency of /healthz on a connection it
   already had (p50, p99 over the 5 s).
3. Deep documents: 200 POSTs of 1 MB nested 500,000 levels deep: answer latency p50, p99
   (each is a 400), and the daemon's RSS after.
4. Large files: --large N files (default 5) of --large-mb MB each (default 100; valid KCIDB,
   tests of 400-byte excerpts) dropped at once, drained by `--burst` with 5 workers: time,
   objects/s and the daemon's peak RSS, with the default reading budget and with it raised
   so high that every worker reads at once (as before the budget).
5. Lonely pairs: --lonely N `.json` files (default 100,000) of an exec spool with
   `--companions .dump` whose dumps never come (a dump writer down): the daemon's CPU over
   10 s while they wait, then a dump for one of them: how soon its pair is done.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "blackbox"))
import harness  # noqa: E402
from procstat import cpu_seconds as cpu_s, pct, rss_mb  # noqa: E402


def idle_readers(readers, jobs):
    box = harness.Sandbox(api=True)
    try:
        box.start("--kind", "exec", "--max-sse-clients", str(readers + 10), "--max-workers", "4",
                  "--http-timeout", "600")
        port = box.wait_for_api()
        socks = []
        for _ in range(readers):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            socks.append(s)
        time.sleep(1)
        before = rss_mb(box.proc.pid)
        line = "x" * 200
        for i in range(jobs):
            box.drop("j%05d.json" % i, json.dumps(
                ["/bin/sh", "-c", "for i in $(seq 20); do echo %s; done" % line]))
        box.wait_for(lambda: len(box.listing("archive")) == jobs, 600, "the jobs")
        after = rss_mb(box.proc.pid)
        events = box.query("SELECT COUNT(*) FROM events")[0][0]
        print("hostile idle readers: %d readers that never read, %d events: RSS %.0f MB -> "
              "%.0f MB (%.1f kB per reader)" % (readers, events, before, after,
                                                (after - before) * 1024 / readers))
        for s in socks:
            s.close()
    finally:
        box.close()


def descriptor_limit():
    box = harness.Sandbox(api=True)
    try:
        with open(os.path.join(box.dir, "daemon.log"), "ab") as log:
            box.proc = subprocess.Popen(["prlimit", "--nofile=64:64"] + box.args(
                "--http-timeout", "600"), stdout=log, stderr=log)
        port = box.wait_for_api()
        keep = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        keep.request("GET", "/healthz")  # connected before the crowd comes
        keep.getresponse().read()
        socks = []
        for _ in range(200):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            socks.append(s)
        cpu0, lines0 = cpu_s(box.proc.pid), box.daemon_log().count("\n")
        lat = []
        end = time.time() + 5
        while time.time() < end:
            t = time.perf_counter()
            keep.request("GET", "/healthz")
            keep.getresponse().read()
            lat.append((time.perf_counter() - t) * 1e3)
            time.sleep(0.01)
        cpu = cpu_s(box.proc.pid) - cpu0
        lines = box.daemon_log().count("\n") - lines0
        print("hostile descriptor limit: 200 connections at a hard limit of 64 for 5 s: %.2f s "
              "CPU, %d log lines; /healthz on an open connection p50 %.2f ms p99 %.2f ms "
              "(%d requests)" % (cpu, lines, pct(lat, 0.5), pct(lat, 0.99), len(lat)))
        for s in socks:
            s.close()
    finally:
        box.close()


def deep_documents():
    box = harness.Sandbox(api=True)
    try:
        box.start("--kind", "exec")
        port = box.wait_for_api()
        body = "[" * 500000 + "]" * 500000
        lat = []
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(200):
            t = time.perf_counter()
            c.request("POST", "/api/v1/jobs", body=body)
            r = c.getresponse()
            r.read()
            lat.append((time.perf_counter() - t) * 1e3)
            assert r.status == 400, r.status
        print("hostile deep documents: 200 POSTs of 1 MB nested 500,000 deep, each a 400: "
              "p50 %.2f ms p99 %.2f ms; RSS after %.0f MB" % (
                  pct(lat, 0.5), pct(lat, 0.99), rss_mb(box.proc.pid)))
    finally:
        box.close()


def write_large_submission(path, mb):
    with open(path, "w") as f:
        f.write('{"version": {"major": 4, "minor": 3}, "tests": [')
        size, i = 0, 0
        while size < mb << 20:
            t = json.dumps({"id": "o:t%d" % i, "build_id": "o:b1", "origin": "o",
                            "path": "a.b.c%d" % i, "status": "PASS", "log_excerpt": "x" * 400})
            f.write(("," if i else "") + t)
            size += len(t) + 1
            i += 1
        f.write("]}")
    return i


def large_files(count, mb):
    box = harness.Sandbox()
    try:
        first = os.path.join(box.dir, "large.json")
        objects = write_large_submission(first, mb)
        for budget in (None, 1 << 40):
            for name in os.listdir(box.spool):
                if name.endswith(".json"):
                    os.remove(os.path.join(box.spool, name))
            shutil.rmtree(os.path.join(box.spool, "archive"), ignore_errors=True)
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(box.db + suffix):
                    os.remove(box.db + suffix)
            for i in range(count):
                shutil.copy(first, os.path.join(box.spool, "large%d.json" % i))
            extra = [] if budget is None else ["--max-reading-bytes", str(budget)]
            t = time.perf_counter()
            r = subprocess.run(["/usr/bin/time", "-f", "%M"] + box.args(
                "--burst", "--settle", "0", "--max-workers", "5", *extra),
                capture_output=True, text=True, timeout=1800)
            took = time.perf_counter() - t
            assert r.returncode == 0, r.stderr[-2000:]
            peak = int(r.stderr.strip().splitlines()[-1]) / 1024
            print("hostile large files: %d files of %d MB (%d tests each) at once, %s: %.1f s, "
                  "%.0f objects/s, peak RSS %.0f MB" % (
                      count, mb, objects,
                      "the default reading budget (128 MB)" if budget is None
                      else "every worker reading at once", took, count * objects / took, peak))
    finally:
        box.close()


def lonely_pairs(count):
    box = harness.Sandbox()
    try:
        for i in range(count):
            with open(os.path.join(box.spool, "c%07d.json" % i), "w") as f:
                f.write('["/bin/true"]')
        box.start("--kind", "exec", "--companions", ".dump", "--interval", "5")
        time.sleep(5)  # the first look at every file
        before = cpu_s(box.proc.pid)
        time.sleep(10)
        used = cpu_s(box.proc.pid) - before
        t = time.perf_counter()
        with open(os.path.join(box.spool, "c0000000.dump"), "w") as f:
            f.write("x")
        box.wait_for(lambda: "c0000000.json" in box.listing("archive"), 60, "the pair")
        print("hostile lonely pairs: %d .json files waiting for their .dump: daemon CPU %.2f s "
              "over 10 s (%.0f%% of a core); a dump arriving: pair done in %.0f ms; RSS %.0f MB"
              % (count, used, used * 10, (time.perf_counter() - t) * 1e3,
                 rss_mb(box.proc.pid)))
    finally:
        box.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--readers", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--large", type=int, default=5)
    ap.add_argument("--large-mb", type=int, default=100)
    ap.add_argument("--lonely", type=int, default=100000)
    args = ap.parse_args()
    harness.SLUICE = os.path.abspath(args.sluice)
    idle_readers(args.readers, args.jobs)
    descriptor_limit()
    deep_documents()
    large_files(args.large, args.large_mb)
    lonely_pairs(args.lonely)


if __name__ == "__main__":
    main()
