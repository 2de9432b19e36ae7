#!/usr/bin/python3
"""bench/publish_amqp: the publish kind's AMQP target against a private rabbitmq-server.

  bench/publish_amqp.py build/sluice [--files N] [--events N] [--rate FILES_PER_S]

1. Throughput: N files (default 200) of M events (default 100, ~300 bytes each) published
   by `sluice serve --burst` (publisher confirms, persistent messages): events/s, wall time,
   peak RSS. The same events published by a Python loop with pika in confirm mode, one
   message at a time (what a pulse_publisher-style client does): events/s, and the ratio.
2. Latency: the daemon running, a producer dropping files at a fixed rate (default 20/s,
   20 events each) for 10 s, a consumer timing each event from its file's rename into the
   spool to its delivery: p50, p95, p99, max.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "blackbox"))
import pika  # noqa: E402

import rabbit  # noqa: E402
from procstat import pct  # noqa: E402

EXCHANGE = "exchange/sluice/bench"


def event(f, i, t=0.0):
    return {"routing_key": "build.linux-%d.finished" % (f % 16), "id": "%d-%d" % (f, i),
            "t": t, "payload": {"builder": "linux64-opt", "buildnumber": i, "result": 0,
                                "revision": "%040x" % (f * 1000 + i),
                                "times": [1700000000 + i, 1700000100 + i]}}


def write(spool, name, events):
    tmp = os.path.join(spool, "." + name + ".part")
    with open(tmp, "w") as fh:
        json.dump(events, fh)
    os.rename(tmp, os.path.join(spool, name))


def channel(broker):
    conn = pika.BlockingConnection(pika.URLParameters(
        "amqp://guest:guest@127.0.0.1:%d/%%2F" % broker.port))
    ch = conn.channel()
    ch.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    return conn, ch


def bind(ch, queue):
    ch.queue_declare(queue, durable=True)
    ch.queue_purge(queue)
    ch.queue_bind(queue, EXCHANGE, "#")


def sluice_args(sluice, work, broker, *extra):
    return [sluice, "serve", "--spool-dir", os.path.join(work, "spool"), "--database",
            "sqlite:" + os.path.join(work, "sluice.db"), "--no-api", "--kind", "publish",
            "--publish-url", broker.url, "--publish-exchange", EXCHANGE, "--settle", "0",
            "--no-archive"] + list(extra)


def throughput(sluice, broker, files, per_file):
    work = tempfile.mkdtemp(prefix="sluice-bench-amqp-")
    spool = os.path.join(work, "spool")
    peer_dir = os.path.join(work, "peer")
    os.makedirs(spool)
    os.makedirs(peer_dir)
    conn, ch = channel(broker)
    bind(ch, "bench-throughput")
    total = 0
    for f in range(files):
        events = [event(f, i) for i in range(per_file)]
        total += len(events)
        write(spool, "events%04d.json" % f, events)
        write(peer_dir, "events%04d.json" % f, events)
    start = time.monotonic()
    proc = subprocess.Popen(sluice_args(sluice, work, broker, "--burst"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit("sluice failed: %s" % proc.stderr.read().decode(errors="replace")[-2000:])
    got = ch.queue_declare("bench-throughput", durable=True, passive=True).method.message_count
    if got != total:
        sys.exit("sluice published %d of %d events" % (got, total))
    sluice_rate = total / wall
    print("sluice (burst, %d files x %d events): %d events in %.2f s = %.0f events/s, "
          "peak RSS %.1f MB" % (files, per_file, total, wall, sluice_rate,
                                usage.ru_maxrss / 1024))

    # The peer: one message at a time in confirm mode, as a Python publisher does.
    ch.queue_purge("bench-throughput")
    pconn, pch = channel(broker)
    pch.confirm_delivery()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    for f in range(files):
        with open(os.path.join(peer_dir, "events%04d.json" % f)) as fh:
            events = json.load(fh)
        for e in events:
            pch.basic_publish(EXCHANGE, e["routing_key"], json.dumps(e).encode(),
                              pika.BasicProperties(content_type="application/json",
                                                   delivery_mode=2))
    peer_wall = time.monotonic() - start
    pconn.close()
    peer_rate = total / peer_wall
    print("pika (Python, confirm per message): %d events in %.2f s = %.0f events/s "
          "(bench process peak RSS %.1f MB before, %.1f MB after)" % (
              total, peer_wall, peer_rate, before / 1024,
              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    print("ratio sluice/pika: %.1fx" % (sluice_rate / peer_rate))
    conn.close()
    shutil.rmtree(work, ignore_errors=True)


def latency(sluice, broker, rate, per_file, seconds=10):
    work = tempfile.mkdtemp(prefix="sluice-bench-amqp-")
    spool = os.path.join(work, "spool")
    os.makedirs(spool)
    conn, ch = channel(broker)
    bind(ch, "bench-latency")
    delays = []
    expected = int(rate * seconds) * per_file

    def consume():
        cconn, cch = channel(broker)
        for method, props, body in cch.consume("bench-latency", auto_ack=True,
                                               inactivity_timeout=30):
            if method is None:
                break
            delays.append(time.time() - json.loads(body)["t"])
            if len(delays) >= expected:
                break
        cconn.close()

    consumer = threading.Thread(target=consume)
    consumer.start()
    proc = subprocess.Popen(sluice_args(sluice, work, broker, "--interval", "1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    n = int(rate * seconds)
    start = time.monotonic()
    for f in range(n):
        now = time.time()
        write(spool, "live%05d.json" % f, [event(f, i, now) for i in range(per_file)])
        time.sleep(max(0, start + (f + 1) / rate - time.monotonic()))
    consumer.join(timeout=60)
    with open("/proc/%d/status" % proc.pid) as fh:
        rss = [int(line.split()[1]) for line in fh if line.startswith("VmHWM:")][0]
    proc.terminate()
    proc.wait()
    conn.close()
    shutil.rmtree(work, ignore_errors=True)
    if len(delays) < expected:
        sys.exit("latency: %d of %d events arrived" % (len(delays), expected))
    ms = [d * 1000 for d in delays]
    print("latency (%d files/s x %d events for %d s, file rename -> delivery): p50 %.1f ms, "
          "p95 %.1f ms, p99 %.1f ms, max %.1f ms; daemon peak RSS %.1f MB" % (
              rate, per_file, seconds, pct(ms, 0.5), pct(ms, 0.95), pct(ms, 0.99), max(ms),
              rss / 1024))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sluice")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--rate", type=float, default=20)
    args = ap.parse_args()
    broker = rabbit.Broker()
    try:
        broker.start()
        throughput(os.path.abspath(args.sluice), broker, args.files, args.events)
        latency(os.path.abspath(args.sluice), broker, args.rate, 20)
    finally:
        broker.close()


if __name__ == "__main__":
    main()
