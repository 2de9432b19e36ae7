"""A cluster: `sluice serve --broker` and `sluice worker` processes sharing one PostgreSQL
database and one Redis. HTTP jobs go to any worker; a worker killed or paused past its lease
loses its jobs to another, and a late result is dropped by the fence; a job whose worker dies
every time ends as a dead letter; what Redis loses is published again by the reconciler."""

import json
import os
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import harness

LEASE = "2"  # seconds: short, so the tests wait little


class Cluster:
    """One database, one Redis of the test's own, a `serve` with the API, and workers."""

    def __init__(self, tag):
        self.database = harness.pg_database(tag)
        self.redis = harness.RedisServer()
        self.url = self.redis.url + "/0"
        self.serve = harness.Sandbox(api=True, database=self.database)
        self.workers = []  # (process, log path)

    def start_serve(self, *extra):
        self.serve.start("--broker", self.url, "--lease", LEASE, "--reconcile-interval", "1",
                         *extra)
        return self.serve.wait_for_api()

    def worker(self, *extra, burst=False):
        log = os.path.join(self.serve.dir, "worker%d.log" % len(self.workers))
        args = [harness.SLUICE, "worker", "-d", self.database, "--broker", self.url,
                "--lease", LEASE, "--reconcile-interval", "1", "--retry-delay", "0.1"]
        args += (["--burst"] if burst else []) + list(extra)
        proc = harness.spawn(args, log)
        self.workers.append((proc, log))
        return proc, log

    def submit(self, payload, kind="exec", **fields):
        body = dict(fields, kind=kind, payload=payload)
        req = urllib.request.Request("http://127.0.0.1:%d/api/v1/jobs" % self.serve.port,
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())["id"]

    def states(self):
        return dict(self.serve.query("SELECT id, state FROM jobs"))

    def wait_all_ended(self, count, timeout=120):
        def ended():
            s = self.states()
            return len(s) == count and all(v in ("succeeded", "failed", "cancelled")
                                           for v in s.values())
        self.serve.wait_for(ended, timeout, "every job to end")

    def final_events(self):
        """job id -> how many final state events it has."""
        rows = self.serve.query("SELECT job_id FROM events WHERE type IN "
                                "('job.succeeded', 'job.failed', 'job.cancelled')")
        out = {}
        for (job_id,) in rows:
            out[job_id] = out.get(job_id, 0) + 1
        return out

    def close(self):
        for proc, _ in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        self.serve.close()
        self.redis.close()


def log_of(path):
    with open(path, errors="replace") as f:
        return f.read()


class RefusedTest(unittest.TestCase):
    def test_a_broker_needs_a_shared_database(self):
        box = harness.Sandbox()
        try:
            r = box.burst("--broker", "redis://127.0.0.1:9/0")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--broker needs a database every process of the cluster shares",
                          r.stderr)
            r = box.sluice("worker", "-d", box.database, "--broker", "redis://127.0.0.1:9/0")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("needs the cluster's database", r.stderr)
            r = box.sluice("worker", "-d", harness.pg_database("w"))
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("needs --broker", r.stderr)
            # arthurw's -d is its Redis: taken as the broker; the database is still needed.
            r = subprocess.run([harness.SLUICE, "worker", "-d", "redis://127.0.0.1:9/8", "-b"],
                               capture_output=True, text=True, timeout=60, cwd=box.dir)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("needs the cluster's database", r.stderr)
            # Refused before anything was made.
            self.assertEqual(sorted(os.listdir(box.dir)), ["spool"])
        finally:
            box.close()

    def test_a_shard_count_other_than_the_clusters_is_refused(self):
        c = Cluster("shards")
        try:
            c.start_serve("--kind", "exec")
            proc, log = c.worker("--shards", "4", "--kind", "exec")
            self.assertNotEqual(proc.wait(timeout=30), 0)
            self.assertIn("shards", log_of(log))
            self.assertIn("8", log_of(log))
        finally:
            c.close()


class CheckWritesNothingTest(unittest.TestCase):
    def test_check_on_a_fresh_redis_records_nothing_and_follows_the_clusters_shards(self):
        c = Cluster("watch")
        try:
            check = c.serve.sluice("check", "--broker", c.url)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            self.assertEqual(c.redis.cli("EXISTS", "sluice:config"), ["0"])  # nothing recorded
            c.start_serve("--shards", "4")  # so a cluster of 4 shards still starts
            c.submit(["/bin/true"])  # the serve runs no exec jobs: it waits in a stream
            check = c.serve.sluice("check", "--broker", c.url)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            self.assertIn("1 ready, 0 handed out", check.stdout)
        finally:
            c.close()


class StartTogetherTest(unittest.TestCase):
    def test_processes_started_at_once_on_a_fresh_database_all_come_up(self):
        c = Cluster("fresh")
        try:
            for _ in range(4):
                c.worker()
            time.sleep(3)
            for proc, log in c.workers:
                self.assertIsNone(proc.poll(), log_of(log))
        finally:
            c.close()


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.c = Cluster("cl")

    def tearDown(self):
        self.c.close()

    def test_jobs_spread_over_workers_and_survive_a_kill(self):
        self.c.start_serve("--kind", "exec", "--max-workers", "2")
        for _ in range(2):
            self.c.worker("--kind", "exec", "--max-workers", "3")
        ids = [self.c.submit(["/bin/sh", "-c", "sleep 0.05; echo job %d" % i])
               for i in range(150)]
        victim, _ = self.c.workers[0]
        self.c.serve.wait_for(lambda: sum(1 for s in self.c.states().values()
                                          if s == "succeeded") >= 30, 60, "30 jobs done")
        victim.kill()
        victim.wait()
        self.c.worker("--kind", "exec", "--max-workers", "3")
        self.c.wait_all_ended(len(ids), timeout=120)
        self.assertEqual(set(self.c.states().values()), {"succeeded"})
        # Every job ended once: one final state event each, none applied twice.
        self.assertEqual(self.c.final_events(), {i: 1 for i in ids})
        owners = {o for (o,) in self.c.serve.query("SELECT DISTINCT lease_owner FROM jobs")}
        self.assertGreaterEqual(len(owners), 3, owners)  # serve and the workers all took some
        # Old events are pruned by one process at a time: the holder of the "pruner" lease.
        pruners = self.c.serve.query("SELECT owner FROM leases WHERE name='pruner'")
        self.assertEqual(len(pruners), 1, pruners)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.c.serve.port) as resp:
            text = resp.read().decode()
        check = subprocess.run(["promtool", "check", "metrics"], input=text,
                               capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("sluice_broker_up 1", text)
        self.assertIn('sluice_broker_stream_entries{queue="default/exec",class="lo",shard="0"} 0',
                      text)
        done = [l for l in text.splitlines()
                if l.startswith('sluice_cluster_jobs_total{outcome="succeeded"}')]
        self.assertEqual(len(done), 1, text)
        self.assertGreater(float(done[0].split()[-1]), 0)

    def test_a_paused_workers_late_result_is_dropped(self):
        # serve runs no exec jobs: only the workers do.
        self.c.start_serve()
        a, a_log = self.c.worker("--kind", "exec")
        job = self.c.submit(["/bin/sh", "-c", "sleep 3; echo slow"])
        # The claim's state is in the store from the claim's own transaction; its log line
        # follows in the worker's next commit: paused before that, the line is fenced out
        # with the rest of the stale claim's writes. Wait for the line.
        self.c.serve.wait_for(lambda: any("claimed by" in d for (d,) in self.c.serve.query(
            "SELECT data FROM events WHERE job_id = ? AND type = 'job.log'", job)), 30,
            "a's claim in the job's log")
        a.send_signal(signal.SIGSTOP)
        b, b_log = self.c.worker("--kind", "exec")
        self.c.wait_all_ended(1, timeout=60)
        self.assertEqual(self.c.states()[job], "succeeded")
        a.send_signal(signal.SIGCONT)
        self.c.serve.wait_for(lambda: "result dropped" in log_of(a_log) or
                              "result will be dropped" in log_of(a_log), 30,
                              "a's result to be dropped")
        time.sleep(1)
        owner, attempts = self.c.serve.query(
            "SELECT lease_owner, attempts FROM jobs WHERE id = ?", job)[0]
        self.assertIn(":%d:" % b.pid, owner)
        self.assertEqual(attempts, 2)  # the lost try counted
        self.assertEqual(self.c.final_events(), {job: 1})
        log = self.c.serve.query("SELECT data FROM events WHERE job_id = ? AND type = 'job.log'",
                                 job)
        claims = [json.loads(d)["line"] for (d,) in log if "claimed by" in d]
        self.assertEqual(len(claims), 2, claims)

    def test_a_paused_serve_gives_its_roles_up_and_keeps_running(self):
        # Back from a pause (or a database outage) longer than the lease, a process may find
        # that another took its roles (pruner, reconciler) over: it gives them up and goes on.
        self.c.start_serve()
        w, w_log = self.c.worker("--kind", "exec")
        self.c.serve.wait_for(lambda: "standing by: reconciler" in log_of(w_log), 30,
                              "the worker to stand by for the reconciler")
        self.c.serve.proc.send_signal(signal.SIGSTOP)
        try:
            self.c.serve.wait_for(lambda: "took over reconciler" in log_of(w_log), 30,
                                  "the worker to take the reconciler over")
        finally:
            self.c.serve.proc.send_signal(signal.SIGCONT)
        self.c.serve.wait_for(lambda: "reconciler was taken over by another daemon; standing "
                              "by for it again" in self.c.serve.daemon_log(), 30,
                              "the serve to give the reconciler up")
        time.sleep(1)
        self.assertIsNone(self.c.serve.proc.poll(), self.c.serve.daemon_log()[-2000:])
        job = self.c.submit(["/bin/sh", "-c", "echo after"])
        self.c.wait_all_ended(1, timeout=60)
        self.assertEqual(self.c.states()[job], "succeeded")
        self.assertIsNone(w.poll())

    def test_a_job_whose_worker_always_dies_is_a_dead_letter(self):
        self.c.start_serve()  # kcidb only: the exec job is the workers'
        job = self.c.submit(["/bin/sh", "-c", "kill -9 $PPID; sleep 5"])
        deaths = 0
        deadline = time.time() + 90
        while self.c.states().get(job) not in ("failed", "succeeded"):
            self.assertLess(time.time(), deadline, "the job never ended")
            if not any(p.poll() is None for p, _ in self.c.workers):
                if self.c.workers:
                    deaths += 1
                self.c.worker("--kind", "exec", "--max-deliveries", "2")
            time.sleep(0.2)
        self.assertEqual(self.c.states()[job], "failed")
        code, message, detail = self.c.serve.query(
            "SELECT error_code, error_message, error_detail FROM jobs WHERE id = ?", job)[0]
        self.assertEqual(code, "dead_letter")
        self.assertIn("handed out 2 times", message)
        self.assertEqual(json.loads(detail)["deliveries"], 2)
        self.assertEqual(deaths, 2)
        self.assertEqual(self.c.redis.cli("XLEN", "sluice:dead:default/exec"), ["1"])
        failed = self.c.serve.sluice("jobs", "--database", self.c.database, "--state", "failed")
        self.assertIn("dead_letter", failed.stdout + failed.stderr)
        check = self.c.serve.sluice("check", "--broker", self.c.url)
        self.assertEqual(check.returncode, 2, check.stdout + check.stderr)
        self.assertTrue(check.stdout.startswith("SLUICE CRITICAL - broker "), check.stdout)
        self.assertIn("1 dead letter", check.stdout)
        self.assertIn("broker_dead=1;;1;0", check.stdout)

    def test_check_warns_of_a_job_held_without_renewal(self):
        self.c.start_serve()
        check = self.c.serve.sluice("check", "--broker", self.c.url, "-t", "1")
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("0 ready, 0 handed out, 0 dead letters", check.stdout)
        w, _ = self.c.worker("--kind", "exec")
        job = self.c.submit(["/bin/sleep", "30"])
        self.c.serve.wait_for(lambda: self.c.states().get(job) == "running", 30, "a claim")
        w.send_signal(signal.SIGSTOP)  # stuck: no renewal from now on
        time.sleep(2.5)
        check = self.c.serve.sluice("check", "--broker", self.c.url, "-t", "1")
        self.assertEqual(check.returncode, 1, check.stdout + check.stderr)
        self.assertIn("without renewal > 1s", check.stdout)

    def test_jobs_redis_lost_are_published_again(self):
        self.c.start_serve()
        ids = [self.c.submit(["/bin/echo", str(i)]) for i in range(40)]
        # Nobody runs exec jobs yet: serve puts them back. Redis forgets every ticket.
        time.sleep(1.5)
        held = sum(int(self.c.redis.cli("XLEN", "sluice:ready:default/exec:lo:%d" % s)[0])
                   for s in range(8))
        self.assertEqual(held, 40)  # 8 shards by default
        self.c.redis.cli("FLUSHALL")
        self.c.worker("--kind", "exec")
        self.c.wait_all_ended(len(ids), timeout=60)
        self.assertEqual(set(self.c.states().values()), {"succeeded"})
        self.assertEqual(self.c.final_events(), {i: 1 for i in ids})
        self.assertIn("reconciler: published", self.c.serve.daemon_log())
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.c.serve.port) as resp:
            text = resp.read().decode()
        line = [l for l in text.splitlines() if l.startswith("sluice_reconciler_published_total")]
        self.assertGreaterEqual(float(line[0].split()[-1]), 40, line)

    def post(self, path):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.c.serve.port, path),
                                     data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_cancel_prioritise_and_retry_a_cluster_job(self):
        self.c.start_serve()  # kcidb only: exec jobs are the workers'
        cancelled = self.c.submit(["/bin/echo", "never"])
        low = [self.c.submit(["/bin/echo", str(i)]) for i in range(20)]
        urgent = self.c.submit(["/bin/echo", "urgent"])
        failing = self.c.submit(["/bin/sh", "-c", "echo no; exit 3"])
        code, body = self.post("/api/v1/jobs/%d/cancel" % cancelled)
        self.assertEqual(code, 200, body)
        self.assertEqual(body["state"], "cancelled")
        code, body = self.post("/api/v1/jobs/%d/cancel" % cancelled)
        self.assertEqual(code, 409, body)  # ended already
        code, body = self.post("/api/v1/jobs/%d/priority" % urgent)
        self.assertEqual(code, 200, body)
        self.assertEqual(body["priority"], 1000)
        self.c.worker("--kind", "exec", "--max-workers", "1")
        self.c.wait_all_ended(23)
        states = self.c.states()
        self.assertEqual(states[cancelled], "cancelled")
        self.assertEqual(states[failing], "failed")
        self.assertEqual({states[i] for i in low + [urgent]}, {"succeeded"})
        order = [i for (i,) in self.c.serve.query(
            "SELECT id FROM jobs WHERE state = 'succeeded' ORDER BY finished_at, id")]
        self.assertEqual(order[0], urgent)  # ahead of the 20 sent before it
        # The cancelled job never ran anywhere.
        self.assertEqual(self.c.serve.query(
            "SELECT COUNT(*) FROM events WHERE job_id = ? AND type = 'job.running'",
            cancelled)[0][0], 0)
        code, body = self.post("/api/v1/jobs/%d/retry" % failing)
        self.assertEqual(code, 200, body)
        self.c.serve.wait_for(lambda: len(self.c.serve.query(
            "SELECT id FROM events WHERE job_id = ? AND type = 'job.failed'", failing)) == 2, 30,
            "the retried job to fail again")

    def test_priority_overtakes_and_deferred_jobs_wait(self):
        self.c.start_serve()  # kcidb only: the exec jobs wait for a worker
        low = [self.c.submit(["/bin/true"]) for _ in range(40)]
        urgent = self.c.submit(["/bin/true"], priority=10)
        later = time.time() + 3
        deferred = self.c.submit(["/bin/true"], run_at=time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(later + 1)))
        self.c.worker("--kind", "exec", "--max-workers", "1")
        self.c.wait_all_ended(len(low) + 2, timeout=60)
        order = [i for (i,) in self.c.serve.query(
            "SELECT id FROM jobs ORDER BY finished_at, id")]
        self.assertEqual(order[0], urgent)  # ahead of the 40 sent before it
        self.assertEqual(order[-1], deferred)
        started = self.c.serve.query("SELECT last_tried FROM jobs WHERE id = ?", deferred)[0][0]
        self.assertGreaterEqual(started / 1e6, later)

    def test_live_events_of_every_process_through_redis_in_id_order(self):
        port = self.c.start_serve()  # kcidb only: the exec jobs run on the two workers
        self.c.worker("--kind", "exec")
        self.c.worker("--kind", "exec")
        sse = harness.SseClient(port, "/api/v1/events")
        sse.read_head()
        first = [self.c.submit(["/bin/echo", str(i)]) for i in range(60)]
        # Redis forgets everything mid-run: the holes are filled from PostgreSQL.
        self.c.redis.cli("FLUSHALL")
        second = [self.c.submit(["/bin/echo", str(i)]) for i in range(60)]
        wanted = set(first + second)

        def done(frames):
            ended = {f["data"]["job"] for f in frames
                     if f.get("event") in ("job.succeeded", "job.failed")}
            return wanted <= ended
        frames = sse.frames(done, timeout=60)
        sse.close()
        ids = [int(f["id"]) for f in frames if "id" in f]
        self.assertEqual(ids, sorted(set(ids)))  # in id order, none twice
        stored = [i for (i,) in self.c.serve.query(
            "SELECT id FROM events WHERE id BETWEEN ? AND ? ORDER BY id", ids[0], ids[-1])]
        self.assertEqual(ids, stored)  # none missing, whichever process committed it
        writers = {o for (o,) in self.c.serve.query(
            "SELECT DISTINCT lease_owner FROM jobs WHERE lease_owner <> ''")}
        self.assertEqual(len(writers), 2, writers)  # both workers' events are among them
        self.assertGreater(int(self.c.redis.cli("XLEN", "sluice:events")[0]), 0)

    def test_burst_and_sigterm(self):
        self.c.start_serve()
        slow = self.c.submit(["/bin/sh", "-c", "sleep 2; echo slow"])
        w, w_log = self.c.worker("--kind", "exec")
        self.c.serve.wait_for(lambda: "claimed by" in log_of(w_log) or self.c.serve.query(
            "SELECT lease_owner FROM jobs WHERE id = ? AND state = 'running'", slow), 30,
            "the worker's claim")
        w.send_signal(signal.SIGTERM)
        self.assertEqual(w.wait(timeout=30), 0, log_of(w_log))
        self.assertEqual(self.c.states()[slow], "succeeded")  # finished before the exit
        self.assertIn("finishing the jobs in hand", log_of(w_log))
        ids = [self.c.submit(["/bin/echo", str(i)]) for i in range(20)]
        b, b_log = self.c.worker("--kind", "exec", burst=True)
        self.assertEqual(b.wait(timeout=60), 0, log_of(b_log))
        states = self.c.states()
        self.assertEqual({states[i] for i in ids}, {"succeeded"})


if __name__ == "__main__":
    harness.main()
