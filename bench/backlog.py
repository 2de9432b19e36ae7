#!/usr/bin/env python3
"""bench/backlog: a daemon started on a spool that already holds millions of files.

    bench/backlog.py build/sluice [--files 2000000] [--seconds 20] [--drain] [--dir DIR]
        [--reuse]

Generates N one-test KCIDB submissions in a fresh spool (one process: two contend for the
directory's lock and are slower; not part of any timing), then starts `sluice serve` on it (SQLite, every commit fsynced, the
default --max-backlog) and measures:

- first start: from spawning the daemon to the first job's start (the earliest `last_tried`
  in its database, the same wall clock), and to the first file in archive/;
- the files finished in the first S seconds (the daemon is then stopped with SIGTERM, as an
  operator would), or with --drain the whole backlog in burst mode;
- the daemon's peak RSS (VmHWM) and CPU seconds.

--reuse runs again on the spool a previous run left in --dir: the files it archived are put
back first, and the database starts empty.

Exits non-zero when a job fails or when a file is lost or done twice (every name is either
still in the spool or in archive/, once, and has one succeeded job).
"""

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procstat  # noqa: E402

TEMPLATE = ('{"version":{"major":5,"minor":3},"tests":[{"id":"bench:t%d","origin":"bench",'
            '"build_id":"bench:b","status":"PASS"}]}')


def generate(spool, lo, hi):
    d = os.open(spool, os.O_RDONLY)
    for i in range(lo, hi):
        fd = os.open("s%07d.json" % i, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=d)
        os.write(fd, (TEMPLATE % i).encode())
        os.close(fd)
    os.close(d)


def count_entries(path):
    n = 0
    with os.scandir(path) as it:
        for e in it:
            if e.name.endswith(".json"):
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--files", type=int, default=2_000_000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--drain", action="store_true", help="drain it all (serve --burst)")
    ap.add_argument("--dir", default=None, help="work here (default: a new temp directory)")
    ap.add_argument("--reuse", action="store_true", help="the spool left in --dir, again")
    args = ap.parse_args()

    work = args.dir or tempfile.mkdtemp(prefix="sluice-backlog-")
    spool = os.path.join(work, "spool")
    db = os.path.join(work, "db.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    if args.reuse:
        if not args.dir or not os.path.isdir(spool):
            raise SystemExit("--reuse needs --dir with a spool from an earlier run")
        archive = os.path.join(spool, "archive")
        if os.path.isdir(archive):
            with os.scandir(archive) as it:
                for e in it:
                    os.rename(os.path.join(archive, e.name), os.path.join(spool, e.name))
        args.files = count_entries(spool)
        print("reusing %d files" % args.files)
    else:
        shutil.rmtree(spool, ignore_errors=True)
        os.makedirs(spool)
        t = time.perf_counter()
        generate(spool, 0, args.files)
        print("generated %d files in %.1f s (not timed below)" % (args.files,
                                                                  time.perf_counter() - t))
    os.sync()

    cmd = [args.sluice, "serve", "--no-api", "--spool-dir", spool, "--database", "sqlite:" + db,
           "--stderr-level", "warn"]
    if args.drain:
        cmd.append("--burst")
    spawned_wall = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    archive = os.path.join(spool, "archive")
    first_archived = None
    peak = cpu = 0.0
    while proc.poll() is None:
        now = time.perf_counter() - t0
        if first_archived is None and os.path.isdir(archive):
            with os.scandir(archive) as it:
                if any(True for _ in it):
                    first_archived = now
        try:
            peak = procstat.peak_rss_mb(proc.pid)
            cpu = procstat.cpu_seconds(proc.pid)
        except OSError:
            pass
        if not args.drain and now >= args.seconds:
            proc.terminate()
            break
        time.sleep(0.002 if first_archived is None else 0.1)
    rc = proc.wait()
    elapsed = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit("sluice exited %d" % rc)

    con = sqlite3.connect(db)
    first_start = con.execute("SELECT min(last_tried) FROM jobs").fetchone()[0]
    states = dict(con.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    twice = con.execute("SELECT count(*) FROM (SELECT name FROM jobs WHERE state='succeeded'"
                        " GROUP BY name HAVING count(*) > 1)").fetchone()[0]
    con.close()
    archived = count_entries(archive) if os.path.isdir(archive) else 0
    left = count_entries(spool)
    succeeded = states.get("succeeded", 0)

    print("files %d, ran %.2f s (%s)" % (args.files, elapsed,
                                         "drained" if args.drain else "then SIGTERM"))
    if first_start is not None:
        print("first job started %.3f s after spawn" % (first_start / 1e6 - spawned_wall))
    print("first file archived %.3f s after spawn" % (first_archived or float("nan")))
    print("succeeded %d (%.0f files/s over the run), archived %d, still in the spool %d"
          % (succeeded, succeeded / elapsed, archived, left))
    print("peak RSS %.0f MB, CPU %.1f s" % (peak, cpu))
    bad = []
    if states.get("failed", 0) or states.get("dead", 0):
        bad.append("failed jobs: %s" % states)
    if twice:
        bad.append("%d names succeeded twice" % twice)
    if archived + left != args.files:
        bad.append("%d archived + %d left != %d files" % (archived, left, args.files))
    if archived > succeeded:
        bad.append("%d archived but %d succeeded" % (archived, succeeded))
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    if bad:
        raise SystemExit("; ".join(bad))


if __name__ == "__main__":
    main()
