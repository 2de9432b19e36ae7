#!/usr/bin/env python3
"""bench/versus_reference: Sluice and the reference ingester side by side, in one run.

    bench/versus_reference.py build/sluice [--rounds 3] [--small 20000] [--zip PATH]
        [--peer ../shared/peers/kcidb_reference.py]

Two spools, each copied fresh for every drain: the 500-submission corpus and N one-test
submissions. Each round drains each spool once with the reference (`kcidb_reference.py
SPOOL DB`: kcidb-io or jsonschema validation, the dashboard's batching, SQLite WAL with
synchronous=FULL) and once with `sluice serve --burst` (SQLite, every commit fsynced),
alternating which goes first. Times are wall clock of the whole process (start, drain,
exit). Prints each run, the machine's own limits measured in the same run (a bare read and
parse of the corpus, rename, stat and fsync rates: the floors under each figure), then the
median of each side and the ratio reference/Sluice.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


def make_corpus(zip_path, dest):
    os.makedirs(dest)
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            if info.filename.endswith(".json") and not info.is_dir():
                with z.open(info) as src, open(os.path.join(dest, os.path.basename(
                        info.filename)), "wb") as out:
                    shutil.copyfileobj(src, out)


def make_small(dest, n):
    os.makedirs(dest)
    for i in range(n):
        with open(os.path.join(dest, "s%06d.json" % i), "w") as f:
            json.dump({"version": {"major": 5, "minor": 3}, "tests": [
                {"id": "bench:t%d" % i, "origin": "bench", "build_id": "bench:b",
                 "status": "PASS"}]}, f)


def count_json(d):
    return sum(1 for n in os.listdir(d) if n.endswith(".json"))


def run_peer(peer, spool, db, trees):
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/python3", peer, spool, db, "--trees", trees],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError("reference failed: " + r.stderr[-2000:])
    m = re.search(r"files=(\d+) failed=(\d+)", r.stdout)
    return secs, int(m.group(1)), int(m.group(2))


def run_sluice(sluice, spool, db):
    t = time.perf_counter()
    r = subprocess.run([sluice, "serve", "--burst", "--no-api", "--spool-dir", spool,
                        "--database", "sqlite:" + db, "--stderr-level", "warn", "--settle", "0"],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError("sluice failed: " + r.stderr[-2000:])
    archived = len(os.listdir(os.path.join(spool, "archive"))) if os.path.isdir(
        os.path.join(spool, "archive")) else 0
    failed_dir = os.path.join(spool, "failed")
    failed = sum(1 for n in os.listdir(failed_dir) if n.endswith(".json") and
                 not n.endswith(".error.json")) if os.path.isdir(failed_dir) else 0
    return secs, archived + failed, failed


def machine_limits(sluice, sources, work):
    """What the machine itself can do, in the same run: the floors under each figure."""
    print("machine limits (same run):")
    if "corpus" in sources:
        subprocess.run(["sync"])
        t = time.perf_counter()
        total = 0
        for name in os.listdir(sources["corpus"]):
            with open(os.path.join(sources["corpus"], name), "rb") as f:
                total += len(f.read())
        secs = time.perf_counter() - t
        print("  read the corpus (%.1f MB, page cache, one thread): %.3f s" % (total / 1e6, secs))
        bench_json = os.path.join(os.path.dirname(os.path.abspath(sluice)), "bench_json")
        if os.path.exists(bench_json):
            r = subprocess.run([bench_json], capture_output=True, text=True)
            for label, what in (("ParseJsonInsitu", "ParseJsonInsitu, as the daemon does"),
                                ("simdjson On-Demand", "simdjson On-Demand, every value read")):
                m = re.search(label + r"\s+([0-9.]+) s", r.stdout)
                if m:
                    print("  parse it with %s (one thread, bench_json): %s s" % (what, m.group(1)))
        # SQLite in WAL mode writes every row twice: into the log at commit, then into the
        # database at the checkpoint. The disk's share of the drain, at the least.
        chunk = b"x" * 16384
        t = time.perf_counter()
        for copy in ("log", "database"):
            fd = os.open(os.path.join(work, "floor-" + copy), os.O_WRONLY | os.O_CREAT, 0o644)
            for i in range(total // len(chunk) + 1):
                os.write(fd, chunk)
                if i % 512 == 511:  # a commit every 8 MB, as the corpus's batches come
                    os.fdatasync(fd)
            os.fdatasync(fd)
            os.close(fd)
            os.unlink(os.path.join(work, "floor-" + copy))
        secs = time.perf_counter() - t
        print("  write the corpus's bytes twice to disk (log and database), fdatasync per "
              "8 MB: %.3f s (%.0f MB/s)" % (secs, 2 * total / 1e6 / secs))
    d = os.path.join(work, "limits")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "a"))
    os.makedirs(os.path.join(d, "b"))
    n = 20000
    for i in range(n):
        with open(os.path.join(d, "a", "s%06d.json" % i), "w") as f:
            f.write("{}")
    da, db = os.open(os.path.join(d, "a"), os.O_RDONLY), os.open(os.path.join(d, "b"), os.O_RDONLY)
    t = time.perf_counter()
    for i in range(n):
        name = "s%06d.json" % i
        os.rename(name, name, src_dir_fd=da, dst_dir_fd=db)
    secs = time.perf_counter() - t
    print("  rename into another directory, one thread: %.0f/s (%.1f us each)" % (
        n / secs, secs / n * 1e6))
    t = time.perf_counter()
    for i in range(n):
        os.stat("s%06d.json" % i, dir_fd=db)
    secs = time.perf_counter() - t
    print("  stat: %.0f/s" % (n / secs))
    os.close(da)
    os.close(db)
    fd = os.open(os.path.join(d, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
    t = time.perf_counter()
    k = 0
    while time.perf_counter() - t < 1.0:
        os.write(fd, b"x" * 100)
        os.fsync(fd)
        k += 1
    print("  write + fsync, one file: %.0f/s" % (k / (time.perf_counter() - t)))
    os.close(fd)
    shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small", type=int, default=20000)
    ap.add_argument("--zip", default=os.path.join(SHARED, "kcidb", "submissions.zip"))
    ap.add_argument("--peer", default=os.path.join(SHARED, "peers", "kcidb_reference.py"))
    ap.add_argument("--only", choices=["corpus", "small"], default=None)
    a = ap.parse_args()
    trees = os.path.join(ROOT, "data", "kcidb", "trees.yml")
    work = tempfile.mkdtemp(prefix="sluice-bench-vs-")
    try:
        sources = {}
        if a.only in (None, "corpus"):
            sources["corpus"] = os.path.join(work, "src-corpus")
            make_corpus(a.zip, sources["corpus"])
        if a.only in (None, "small"):
            sources["small"] = os.path.join(work, "src-small")
            make_small(sources["small"], a.small)
        results = {k: {"reference": [], "sluice": []} for k in sources}
        for rnd in range(a.rounds):
            for name, src in sources.items():
                order = ["reference", "sluice"] if rnd % 2 == 0 else ["sluice", "reference"]
                for who in order:
                    spool = os.path.join(work, "spool")
                    db = os.path.join(work, "db.sqlite")
                    shutil.rmtree(spool, ignore_errors=True)
                    for f in (db, db + "-wal", db + "-shm"):
                        if os.path.exists(f):
                            os.unlink(f)
                    shutil.copytree(src, spool)
                    subprocess.run(["sync"])
                    n = count_json(spool)
                    if who == "reference":
                        secs, done, failed = run_peer(a.peer, spool, db, trees)
                    else:
                        secs, done, failed = run_sluice(a.sluice, spool, db)
                    if done != n:
                        raise RuntimeError("%s drained %d of %d files" % (who, done, n))
                    results[name][who].append(secs)
                    print("round %d %-6s %-9s %6.3f s  %8.0f files/s  (%d failed)" % (
                        rnd + 1, name, who, secs, n / secs, failed), flush=True)
        print()
        machine_limits(a.sluice, sources, work)
        print()
        for name, r in results.items():
            ref, slu = statistics.median(r["reference"]), statistics.median(r["sluice"])
            n = count_json(sources[name])
            print("%-6s reference %.3f s (%.0f files/s), sluice %.3f s (%.0f files/s): "
                  "%.1fx" % (name, ref, n / ref, slu, n / slu, ref / slu))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
