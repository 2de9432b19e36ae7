#!/usr/bin/env python3
"""bench/dashboard: the dashboard with a large store and a busy daemon, in numbers.

    bench/dashboard.py build/sluice [--jobs 1000000] [--events-per-s 1000] [--seconds 10]

Fills a SQLite store with N jobs (states, queues, error codes and end times spread as a busy
spool's are), starts `sluice serve` on it, and measures:
  - the API calls the page makes (overview, the newest page of jobs, a page deep in the
    store, a filtered page, failures by code): p50/p99 over 20 calls each;
  - in a real headless Chromium (Debian chromium + chromedriver, Selenium): the first render
    (navigation start to the overview's counts on screen) and the bytes transferred;
  - with HTTP jobs sent at a steady rate so that the daemon emits about --events-per-s
    events a second: the page's main-thread busy time per second (CDP Performance.getMetrics,
    TaskDuration) and the events it showed.
Also the daemon's peak RSS. No peer: Socorro, Arthur and ChRIS ship no comparable page.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from procstat import pct, peak_rss_mb

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CODES = ["invalid_json", "schema_violation", "unsupported_version", "upgrade_impossible"]


def fill(db, n):
    """n jobs, ids 1..n; most succeeded, some failed (by code), a few waiting."""
    con = sqlite3.connect(db)
    now = int(time.time() * 1e6)
    rng = random.Random(7)
    rows = []
    t0 = time.time()
    for i in range(1, n + 1):
        r = rng.random()
        state = "succeeded" if r < 0.9 else "failed" if r < 0.98 else "queued"
        created = now - (n - i) * 1000  # one a millisecond, the newest now
        finished = created + 500 if state != "queued" else None
        code = rng.choice(CODES) if state == "failed" else None
        rows.append(("q%d" % (i % 4), "kcidb", "/srv/spool", "file-%07d.json" % i, state, 1, 5,
                     created, finished, code, "it broke" if code else None))
        if len(rows) == 50000:
            con.executemany("INSERT INTO jobs (queue, kind, spool, name, state, attempts, "
                            "max_attempts, created_at, finished_at, error_code, error_message) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            rows = []
    if rows:
        con.executemany("INSERT INTO jobs (queue, kind, spool, name, state, attempts, "
                        "max_attempts, created_at, finished_at, error_code, error_message) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return time.time() - t0


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("%s: %d %s" % (path, r.status, body[:200]))
    return (time.perf_counter() - t) * 1000, body


def browser(profile):
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--user-data-dir=" + profile, "--no-first-run"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def page_bytes(driver):
    return driver.execute_script("""
        const nav = performance.getEntriesByType('navigation')[0];
        let bytes = nav.transferSize, decoded = nav.decodedBodySize;
        for (const r of performance.getEntriesByType('resource')) {
          bytes += r.transferSize; decoded += r.decodedBodySize;
        }
        return [bytes, decoded];""")


def metrics(driver):
    return {m["name"]: m["value"] for m in driver.execute_cdp_cmd(
        "Performance.getMetrics", {})["metrics"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--events-per-s", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-bench-dash-")
    spool = os.path.join(work, "spool")
    os.makedirs(spool)
    db = os.path.join(work, "sluice.db")
    subprocess.run([a.sluice, "migrate", "--database", "sqlite:" + db], check=True,
                   capture_output=True)
    took = fill(db, a.jobs)
    print("store: %d jobs written in %.1f s (%.0f MB)" % (a.jobs, took,
                                                         os.path.getsize(db) / 1e6))
    log = open(os.path.join(work, "daemon.log"), "w")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    daemon = subprocess.Popen([a.sluice, "serve", "--spool-dir", spool, "--database",
                               "sqlite:" + db, "--port", str(port), "--max-workers", "2"],
                              stdout=log, stderr=log)
    driver = None
    profile = tempfile.mkdtemp(prefix="sluice-bench-chromium-")
    try:
        for _ in range(300):
            try:
                get(port, "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        print("\nAPI calls the page makes (20 each, ms):")
        print("  %-44s %8s %8s" % ("call", "p50", "p99"))
        deep = a.jobs // 2
        for path in ("/api/v1/overview", "/api/v1/jobs?limit=50",
                     "/api/v1/jobs?limit=50&cursor=%d" % deep,
                     "/api/v1/jobs?limit=50&state=failed&error=schema_violation",
                     "/api/v1/jobs?limit=50&name=file-%07d.json" % deep,
                     "/api/v1/failures"):
            times = [get(port, path)[0] for _ in range(20)]
            print("  %-44s %8.1f %8.1f" % (path[:44], pct(times, 0.5), pct(times, 0.99)))

        driver = browser(profile)
        driver.execute_cdp_cmd("Performance.enable", {})
        renders = []
        for i in range(5):
            driver.get("about:blank")
            driver.get("http://127.0.0.1:%d/" % port)
            WebDriverWait(driver, 60, poll_frequency=0.01).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "table.counts tbody tr"))
            renders.append(driver.execute_script(
                "return performance.now() - 0"))  # ms since this document's navigation
            if i == 0:  # a cold cache: everything sent whole
                sizes = page_bytes(driver)
        print("\nfirst render with %d jobs: p50 %.0f ms, max %.0f ms (5 loads, navigation to "
              "the counts on screen)" % (a.jobs, pct(renders, 0.5), max(renders)))
        print("transferred on a first visit: %.1f KB (%.1f KB decoded): the page, its files "
              "and its first API calls; later visits: %.1f KB (304s)" % (
                  sizes[0] / 1024, sizes[1] / 1024, page_bytes(driver)[0] / 1024))

        # A busy daemon: HTTP jobs at a steady rate; each makes 3 events (queued, running,
        # succeeded).
        rate = a.events_per_s / 3.0
        stop = threading.Event()
        sent = [0]

        def producer():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps({"kind": "kcidb", "payload": {
                "version": {"major": 5, "minor": 3},
                "tests": [{"id": "b:t", "origin": "b", "build_id": "b:b"}]}}).encode()
            start = time.perf_counter()
            while not stop.is_set():
                due = start + sent[0] / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                c.request("POST", "/api/v1/jobs", body, {"Content-Type": "application/json"})
                c.getresponse().read()
                sent[0] += 1
        newest = lambda: json.loads(get(port, "/api/v1/jobs?limit=1")[1])["jobs"][0]["id"]  # noqa: E731
        first_id = newest()
        t = threading.Thread(target=producer)
        t.start()
        time.sleep(1)  # steady
        m0, w0 = metrics(driver), time.perf_counter()
        time.sleep(a.seconds)
        m1, w1 = metrics(driver), time.perf_counter()
        stop.set()
        t.join()
        wall = w1 - w0
        busy = (m1["TaskDuration"] - m0["TaskDuration"]) / wall * 1000
        script = (m1["ScriptDuration"] - m0["ScriptDuration"]) / wall * 1000
        layout = (m1["LayoutDuration"] - m0["LayoutDuration"]) / wall * 1000
        style = (m1["RecalcStyleDuration"] - m0["RecalcStyleDuration"]) / wall * 1000
        ended = newest() - first_id
        print("\nbusy daemon: %d jobs sent in %.1f s (about %.0f events/s)" % (
            sent[0], wall + 1, sent[0] * 3 / (wall + 1)))
        print("page main thread: %.0f ms busy per second (script %.0f, style %.0f, layout %.0f); "
              "%d jobs registered meanwhile" % (busy, script, style, layout, ended))
        feed = len(driver.find_elements(By.CSS_SELECTOR, "#feed li"))
        print("live feed on screen: %d rows (capped at 200)" % feed)
        print("\ndaemon peak RSS: %.0f MB" % peak_rss_mb(daemon.pid))
    finally:
        if driver is not None:
            driver.quit()
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
