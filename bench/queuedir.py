#!/usr/bin/python3
"""bench/queuedir: `sluice command-runner` on a Mozilla queuedir, in numbers.

  bench/queuedir.py build/sluice [--items N] [--jobs J] [--backlog N]

1. Drain: N items (default 2,000) of ["/bin/true"] written to new/ as the queuedir producer
   writes them (tmp/, then a rename), run with -j J (default 2): items/s from start to an
   empty new/ and cur/, and the runner's peak RSS.
2. Waiting items: N items of ["/bin/false"] with -r 5 -t 3600: each fails once and waits in
   cur/ for its retry, where command_runner keeps it; the runner touches every waiting item
   and its log each second so a producer's cleanup() never takes them back. The runner's
   CPU over 10 s with all N waiting, and per item.
3. Backlog: the drain again with --backlog items (default 20,000) already in new/, as after an
   outage of the runner: a runner that lists new/ for every claim slows down as N^2.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from procstat import cpu_seconds as cpu_s, peak_rss_mb  # noqa: E402


def make_queuedir(items, argv):
    qd = tempfile.mkdtemp(prefix="sluice-bench-qd-")
    for sub in ("tmp", "new", "cur", "logs", "dead"):
        os.makedirs(os.path.join(qd, sub))
    body = json.dumps(argv)
    for i in range(items):
        name = "%.6f-%d-%d" % (time.time(), os.getpid(), i)
        tmp = os.path.join(qd, "tmp", name)
        with open(tmp, "w") as f:
            f.write(body)
        os.rename(tmp, os.path.join(qd, "new", name))
    return qd


def wait(predicate, proc, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            sys.exit("the runner exited (%s) while waiting for %s" % (proc.returncode, what))
        time.sleep(0.05)
    sys.exit("timed out waiting for %s" % what)


def drain(sluice, items, jobs, label="drain"):
    qd = make_queuedir(items, ["/bin/true"])
    start = time.monotonic()
    proc = subprocess.Popen([sluice, "command-runner", "-q", qd, "-j", str(jobs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(lambda: not os.listdir(os.path.join(qd, "new")) and
         not os.listdir(os.path.join(qd, "cur")), proc, 600, "the queue to drain")
    wall = time.monotonic() - start
    rss = peak_rss_mb(proc.pid)
    proc.terminate()
    proc.wait()
    shutil.rmtree(qd, ignore_errors=True)
    print("%s: %d items of /bin/true, -j %d: %.2f s = %.0f items/s, peak RSS %.1f MB" % (
        label, items, jobs, wall, items / wall, rss))


def waiting(sluice, items, jobs):
    qd = make_queuedir(items, ["/bin/false"])
    proc = subprocess.Popen([sluice, "command-runner", "-q", qd, "-j", str(jobs), "-r", "5",
                             "-t", "3600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def all_waiting():
        if os.listdir(os.path.join(qd, "new")):
            return False
        logs = os.listdir(os.path.join(qd, "logs"))
        if len(logs) < items:
            return False
        for name in logs:
            with open(os.path.join(qd, "logs", name)) as f:
                if "Result:" not in f.read():
                    return False
        return True
    wait(all_waiting, proc, 600, "every item to fail once")
    in_cur = len(os.listdir(os.path.join(qd, "cur")))
    time.sleep(1)
    before = cpu_s(proc.pid)
    time.sleep(10)
    used = cpu_s(proc.pid) - before
    mtimes = [os.stat(os.path.join(qd, "cur", n)).st_mtime for n in os.listdir(os.path.join(qd, "cur"))]
    freshest_gap = time.time() - min(mtimes)
    rss = peak_rss_mb(proc.pid)
    proc.terminate()
    proc.wait()
    shutil.rmtree(qd, ignore_errors=True)
    print("waiting: %d items in cur/ for their retry: runner CPU %.2f s over 10 s (%.1f%% of "
          "a core, %.1f us per item per second); oldest item touched %.1f s ago; peak RSS "
          "%.1f MB" % (in_cur, used, used * 10, used / 10 / max(in_cur, 1) * 1e6, freshest_gap,
                       rss))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--backlog", type=int, default=20000)
    args = ap.parse_args()
    sluice = os.path.abspath(args.sluice)
    drain(sluice, args.items, args.jobs)
    waiting(sluice, args.items, args.jobs)
    if args.backlog > 0:
        drain(sluice, args.backlog, args.jobs, "backlog")


if __name__ == "__main__":
    main()
