#!/usr/bin/env python3
"""bench/retention: what deleting a long history of ended jobs costs, in numbers.

    bench/retention.py build/sluice [--jobs 1000000] [--files 20000] [--rounds 2]

Fills a SQLite store with N succeeded jobs that ended 40 days ago (each with its three
events: queued, running, succeeded; not timed), then, on copies of it, starts `sluice serve`
on a spool of F small KCIDB submissions twice in each round, in turn:
  - keep: --job-max-age 0 (nothing pruned), the drain of the F files alone;
  - prune: the default 30 days, so the N old jobs are deleted while the F files drain.
For each: the drain's wall time and files/s, the daemon's CPU seconds and peak RSS; for
prune, also the time until every old job is gone (jobs/s) and the database's size before and
after (SQLite reuses the freed pages; the file does not shrink). The ratio of the drains says
what the pruning costs ingestion. No peer: KernelCI's ingester keeps no job history, and
Arthur's (RQ's) expiry is Redis's own key TTL.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from procstat import cpu_seconds, peak_rss_mb

DAY_US = 24 * 3600 * 1000000
SUBMISSION = {"version": {"major": 5, "minor": 3},
              "tests": [{"id": "bench:t1", "origin": "bench", "build_id": "bench:b1",
                         "status": "PASS"}]}


def make_store(sluice, work, n):
    spool = os.path.join(work, "empty-spool")
    os.makedirs(spool)
    db = os.path.join(work, "base.db")
    r = subprocess.run([sluice, "serve", "--burst", "--no-api", "--spool-dir", spool,
                        "--database", "sqlite:" + db], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("sluice serve --burst: " + r.stderr)
    ended = int(time.time() * 1e6) - 40 * DAY_US
    con = sqlite3.connect(db)
    con.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO jobs(id, queue, kind, spool, name, file_dev, file_ino, file_size,"
        " file_mtime_ns, state, attempts, max_attempts, created_at, last_tried, finished_at,"
        " result) SELECT i, 'default', 'kcidb', '/srv/spool', 'old-' || i || '.json', 1, i, 120,"
        " 0, 'succeeded', 1, 5, ? + i, ? + i, ? + i, '{\"tests\":1}' FROM n", (n, ended, ended,
                                                                             ended))
    for kind in ("queued", "running", "succeeded"):
        con.execute(
            "INSERT INTO events(ts, job_id, queue, kind, type, data) SELECT finished_at, id,"
            " 'default', 'kcidb', 'job.' || ?, '{\"job\":' || id || ',\"state\":\"' || ? ||"
            " '\"}' FROM jobs", (kind, kind))
    con.commit()
    con.close()
    return db, ended


def make_spool(dest, n):
    os.makedirs(dest)
    data = json.dumps(SUBMISSION).encode()
    for i in range(n):
        with open(os.path.join(dest, "new-%06d.json" % i), "wb") as f:
            f.write(data)


def run(sluice, base_db, work, files, prune, ended):
    d = tempfile.mkdtemp(dir=work)
    db = os.path.join(d, "sluice.db")
    shutil.copy(base_db, db)
    spool = os.path.join(d, "spool")
    make_spool(spool, files)
    size_before = os.path.getsize(db)
    args = [sluice, "serve", "--no-api", "--spool-dir", spool, "--database", "sqlite:" + db,
            "--settle", "0", "--stderr-level", "warn"]
    if not prune:
        args += ["--job-max-age", "0"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    archive = os.path.join(spool, "archive")
    drained = pruned = None
    con = None
    try:
        while time.perf_counter() - t0 < 3600:
            if proc.poll() is not None:
                sys.exit("sluice serve exited %d: %s" % (proc.returncode,
                                                         proc.stderr.read().decode()[-2000:]))
            now = time.perf_counter() - t0
            if drained is None and os.path.isdir(archive) and len(os.listdir(archive)) >= files:
                drained = now
            if prune and pruned is None:
                if con is None and os.path.exists(db):
                    con = sqlite3.connect(db, timeout=30)
                try:
                    left = con.execute("SELECT COUNT(*) FROM jobs WHERE finished_at <= ?",
                                       (ended + 10 ** 9,)).fetchone()[0]
                except sqlite3.OperationalError:
                    left = -1
                if left == 0:
                    pruned = now
            if drained is not None and (not prune or pruned is not None):
                break
            time.sleep(0.05)
        cpu = cpu_seconds(proc.pid)
        peak = peak_rss_mb(proc.pid)
    finally:
        if con is not None:
            con.close()
        proc.terminate()
        proc.wait(timeout=120)
    out = {"drain_s": drained, "cpu_s": cpu, "peak_mb": peak, "pruned_s": pruned,
           "size_before_mb": size_before / 1e6, "size_after_mb": os.path.getsize(db) / 1e6}
    shutil.rmtree(d, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--jobs", type=int, default=1000000)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    sluice = os.path.abspath(a.sluice)
    work = tempfile.mkdtemp(prefix="sluice-bench-retention-", dir=a.dir)
    try:
        t = time.perf_counter()
        base, ended = make_store(sluice, work, a.jobs)
        print("store: %d old jobs, %d events, %.0f MB (made in %.1f s, not timed)" % (
            a.jobs, 3 * a.jobs, os.path.getsize(base) / 1e6, time.perf_counter() - t), flush=True)
        results = {"keep": [], "prune": []}
        for r in range(a.rounds):
            for mode in (("keep", "prune") if r % 2 == 0 else ("prune", "keep")):
                res = run(sluice, base, work, a.files, mode == "prune", ended)
                results[mode].append(res)
                line = "round %d %-5s: drain %.2f s (%.0f files/s), CPU %.2f s, peak RSS %.0f MB" % (
                    r + 1, mode, res["drain_s"], a.files / res["drain_s"], res["cpu_s"],
                    res["peak_mb"])
                if mode == "prune":
                    line += ", %d old jobs gone in %.1f s (%.0f jobs/s), database %.0f -> %.0f MB" % (
                        a.jobs, res["pruned_s"], a.jobs / res["pruned_s"], res["size_before_mb"],
                        res["size_after_mb"])
                print(line, flush=True)

        def med(mode, key):
            v = sorted(x[key] for x in results[mode])
            return v[len(v) // 2]
        print("medians: drain keep %.2f s, prune %.2f s (prune/keep %.2f); pruning %.0f jobs/s;"
              " peak RSS keep %.0f MB, prune %.0f MB" % (
                  med("keep", "drain_s"), med("prune", "drain_s"),
                  med("prune", "drain_s") / med("keep", "drain_s"),
                  a.jobs / med("prune", "pruned_s"), med("keep", "peak_mb"),
                  med("prune", "peak_mb")))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
