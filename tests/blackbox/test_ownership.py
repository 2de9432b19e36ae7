"""One owner per spool on a shared PostgreSQL database: a second daemon given the same spool
stands by and takes it over when the first dies (kill -9); a daemon paused past its lease
stops at once when it wakes up; a restarting daemon leaves the jobs of a live daemon alone."""

import fcntl
import json
import os
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import harness
from test_tasks import commit, git

LEASE = "3"  # seconds: short, so the tests wait little


def doc(tag, i):
    return {"version": {"major": 5, "minor": 3}, "tests": [
        {"id": "own:%s%d" % (tag, i), "origin": "own", "build_id": "own:b", "status": "PASS"}]}


class OwnershipTest(unittest.TestCase):
    def setUp(self):
        self.database = harness.pg_database("own")
        self.a = harness.Sandbox(database=self.database)
        self.b = harness.Sandbox(database=self.database)
        self.b.spool = self.a.spool  # the same spool, as on shared storage

    def tearDown(self):
        for box in (self.a, self.b):
            if box.proc and box.proc.poll() is None:
                box.proc.send_signal(signal.SIGCONT)
        self.a.close()
        self.b.close()

    def archived(self):
        return len(self.a.listing("archive"))

    def test_the_standby_takes_the_spool_over_when_its_owner_dies(self):
        for i in range(50):
            self.a.drop("first-%03d.json" % i, doc("f", i))
        self.a.start("--lease", LEASE)
        self.a.wait_for(lambda: self.archived() == 50, 60, "the first 50 files")
        self.b.start("--lease", LEASE)
        self.b.wait_for(lambda: "standing by: spool:" in self.b.daemon_log(), 30,
                        "the second daemon to stand by")
        for i in range(50):
            self.a.drop("second-%03d.json" % i, doc("s", i))
        self.a.wait_for(lambda: self.archived() == 100, 60, "the next 50 files")
        self.assertNotIn("took over", self.b.daemon_log())
        self.a.stop(signal.SIGKILL)
        killed = time.time()
        for i in range(50):
            self.a.drop("third-%03d.json" % i, doc("t", i))
        self.b.wait_for(lambda: "took over spool:" in self.b.daemon_log(), 30, "the takeover")
        self.assertLess(time.time() - killed, float(LEASE) + 5)
        self.b.wait_for(lambda: self.archived() == 150, 60, "the last 50 files")
        stats = self.b.sluice("stats", "--database", self.database).stdout
        holder = [l for l in stats.splitlines() if l.strip().startswith("spool:")]
        self.assertEqual(len(holder), 1, stats)
        self.assertIn(":%d:" % self.b.proc.pid, holder[0])  # b's, for some seconds more
        self.assertIn("epoch 2", holder[0])
        time.sleep(1)
        jobs = self.a.query("SELECT name, state FROM jobs")
        self.assertEqual(len(jobs), 150)  # no file registered twice
        self.assertEqual({s for _, s in jobs}, {"succeeded"})
        self.assertEqual(self.a.query("SELECT COUNT(*) FROM tests")[0][0], 150)
        self.assertEqual(self.b.stop(), 0)

    def test_metrics_say_who_holds_which_role(self):
        self.a.api = True
        self.a.start("--lease", LEASE)
        port = self.a.wait_for_api()
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port) as resp:
            text = resp.read().decode()
        check = subprocess.run(["promtool", "check", "metrics"], input=text,
                               capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        spool = [l for l in text.splitlines()
                 if l.startswith('sluice_lease_epoch{name="spool:%s"' % self.a.spool)]
        self.assertEqual(len(spool), 1, text)
        self.assertIn(':%d:' % self.a.proc.pid, spool[0])
        self.assertTrue(spool[0].endswith(" 1"))
        self.assertIn('sluice_lease_seconds_left{name="scheduler"', text)
        self.assertEqual(self.a.stop(), 0)

    def test_a_daemon_paused_past_its_lease_stops_when_it_wakes(self):
        self.a.start("--lease", LEASE)
        self.a.wait_for(lambda: "watching 1 spool" in self.a.daemon_log(), 30, "a to start")
        self.b.start("--lease", LEASE)
        self.b.wait_for(lambda: "standing by" in self.b.daemon_log(), 30, "b to stand by")
        self.a.proc.send_signal(signal.SIGSTOP)
        self.b.wait_for(lambda: "took over spool:" in self.b.daemon_log(), 30, "the takeover")
        self.a.proc.send_signal(signal.SIGCONT)
        rc = self.a.proc.wait(timeout=15)
        self.assertNotEqual(rc, 0)
        self.assertIn("taken over by another daemon", self.a.daemon_log())
        for i in range(20):
            self.a.drop("after-%03d.json" % i, doc("x", i))
        self.b.wait_for(lambda: self.archived() == 20, 60, "b to run the spool")
        self.assertEqual(self.b.stop(), 0)

    def test_a_clean_stop_hands_the_spool_over_at_once(self):
        self.a.start("--lease", "60")
        self.a.wait_for(lambda: "watching 1 spool" in self.a.daemon_log(), 30, "a to start")
        self.b.start("--lease", "60")
        self.b.wait_for(lambda: "standing by" in self.b.daemon_log(), 30, "b to stand by")
        stopped = time.time()
        self.assertEqual(self.a.stop(), 0)
        self.b.wait_for(lambda: "took over spool:" in self.b.daemon_log(), 10, "the takeover")
        self.assertLess(time.time() - stopped, 10)  # not the 60 s of the lease
        self.assertEqual(self.b.stop(), 0)


    def test_only_daemons_of_one_database_take_turns_on_a_spool(self):
        # Daemons of two databases on one spool would each run its files (their leases are
        # in different databases): the second refuses. The same database, spelled otherwise,
        # stands by as before. A producer's FIFO or link under such a name in the spool
        # neither blocks a start nor is followed, and a file another user holds there does
        # not keep daemons out.
        os.mkfifo(os.path.join(self.a.spool, ".sluice-database-" + "f" * 32))
        os.symlink("/etc/passwd", os.path.join(self.a.spool, ".sluice-database-" + "e" * 32))
        held = None
        if os.geteuid() == 0:
            path = os.path.join(self.a.spool, ".sluice-database-" + "d" * 32)
            held = open(path, "w")
            os.chown(path, 65534, 65534)
            fcntl.flock(held, fcntl.LOCK_SH)
        self.a.start("--lease", "60")
        self.a.wait_for(lambda: "watching 1 spool" in self.a.daemon_log(), 30, "a to start")
        other = harness.pg_database("own_other")
        r = subprocess.run([harness.SLUICE, "serve", "--no-api", "--burst", "--spool-dir",
                            self.a.spool, "--database", other],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("another daemon runs the spool %s with another database" % self.a.spool,
                      r.stderr)
        if held:
            held.close()
        self.b.database = self.database + " connect_timeout=10"
        self.b.start("--lease", "60")
        self.b.wait_for(lambda: "standing by" in self.b.daemon_log(), 30, "b to stand by")
        self.assertEqual(self.b.stop(), 0)
        self.assertEqual(self.a.stop(), 0)
        # Once they have stopped, a daemon of the other database may have the spool.
        self.a.drop("later.json", doc("l", 0))
        r = subprocess.run([harness.SLUICE, "serve", "--no-api", "--burst", "--spool-dir",
                            self.a.spool, "--database", other],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.a.listing("archive"), ["later.json"])

class OutageTest(unittest.TestCase):
    """A database away for longer than the lease, for every daemon: nobody can take anything
    over, so the daemon stays up and goes on when it is back."""

    def setUp(self):
        self.server = harness.PgServer()
        self.box = harness.Sandbox(database=self.server.database("outage"))

    def tearDown(self):
        self.box.close()
        self.server.close()

    def test_the_owner_outlives_an_outage_longer_than_its_lease(self):
        self.box.start("--lease", LEASE)
        self.box.wait_for(lambda: "watching 1 spool" in self.box.daemon_log(), 30, "the start")
        self.server.stop()
        time.sleep(3 * float(LEASE))
        self.assertIsNone(self.box.proc.poll())
        self.box.drop("during.json", doc("o", 1))
        self.server.start()
        self.box.wait_for(lambda: len(self.box.listing("archive")) == 1, 60,
                          "the file taken during the outage")
        self.assertIn("leases renewed again", self.box.daemon_log())
        self.assertEqual(self.box.stop(), 0)


class SchedulerTest(unittest.TestCase):
    """Recurring tasks on a shared database run on one daemon: the holder of the scheduler
    lease; another takes over when it dies."""

    def setUp(self):
        self.database = harness.pg_database("sched")
        self.a = harness.Sandbox(api=True, database=self.database)
        self.b = harness.Sandbox(api=True, database=self.database)
        self.repo = os.path.join(self.a.dir, "repo")
        os.makedirs(self.repo)
        git(self.repo, "init", "-q", "-b", "main")
        commit(self.repo, "a.txt", "one\n", "first")

    def tearDown(self):
        self.a.close()
        self.b.close()

    def call(self, port, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                     json.dumps(body).encode() if body is not None else None,
                                     {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_one_daemon_runs_the_tasks_and_another_takes_them_over(self):
        self.a.start("--lease", LEASE)
        a_port = self.a.wait_for_api()
        self.b.start("--lease", LEASE)
        b_port = self.b.wait_for_api()
        task = {"task_id": "shared", "backend": "git", "category": "commit",
                "backend_args": {"uri": self.repo, "from_date": "2000-01-01"},
                "scheduler": {"delay": 1}}
        code, body = self.call(b_port, "/add", {"tasks": [task]})
        self.assertEqual(code, 503)
        self.assertIn("another daemon", body["error"]["message"])
        self.assertEqual(self.call(a_port, "/add", {"tasks": [task]})[0], 200)
        self.a.wait_for(lambda: self.a.query(
            "SELECT COUNT(*) FROM items WHERE task_id='shared'")[0][0] == 1, 30, "the items")
        self.a.stop(signal.SIGKILL)
        self.b.wait_for(lambda: self.call(b_port, "/tasks")[0] == 200, float(LEASE) + 10,
                        "b to take the tasks over")
        commit(self.repo, "a.txt", "two\n", "second")
        self.b.wait_for(lambda: self.b.query(
            "SELECT COUNT(*) FROM items WHERE task_id='shared'")[0][0] == 2, 30,
            "the new commit, fetched by b")
        runs = self.b.query("SELECT COUNT(*) FROM task_runs")[0][0]
        self.assertGreater(runs, 0)
        self.assertEqual(self.b.stop(), 0)


class ApiJobsTest(unittest.TestCase):
    """Jobs sent over HTTP belong to the daemon that took them: another daemon's restart
    leaves them alone while it lives, and takes them over when it is gone."""

    def setUp(self):
        self.database = harness.pg_database("apijobs")
        self.a = harness.Sandbox(api=True, database=self.database)
        self.b = harness.Sandbox(api=True, database=self.database)
        self.mark = os.path.join(self.a.dir, "go")

    def tearDown(self):
        self.a.close()
        self.b.close()

    def start(self, box):
        log = os.path.join(box.dir, "daemon.log")
        if os.path.exists(log):
            os.rename(log, log + ".%d" % time.time_ns())
        box.start("--kind", "exec", "--lease", LEASE, "--max-workers", "4")
        return box.wait_for_api()

    def submit(self, port, script):
        body = json.dumps({"kind": "exec", "payload": ["/bin/sh", "-c", script]}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/api/v1/jobs" % port, body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())["id"]

    def job(self, job_id):
        return self.a.query("SELECT state, attempts, interruptions FROM jobs WHERE id=?",
                            job_id)[0]

    def test_a_restart_leaves_a_live_daemons_jobs_and_adopts_a_dead_ones(self):
        a_port = self.start(self.a)
        self.start(self.b)
        wait = "while [ ! -e %s ]; do sleep 0.1; done" % self.mark
        running = [self.submit(a_port, wait) for _ in range(2)]
        self.a.wait_for(lambda: all(self.job(j)[0] == "running" for j in running), 30,
                        "a to run its jobs")
        # b restarts while a's jobs run: they are a's, not b's to recover.
        self.assertEqual(self.b.stop(), 0)
        self.start(self.b)
        time.sleep(1)
        self.assertNotIn("unfinished jobs", self.b.daemon_log())
        self.assertTrue(all(self.job(j) == ("running", 1, 0) for j in running))
        # a dies with them running: b takes them over within the lease and runs them.
        self.a.stop(signal.SIGKILL)
        died = time.time()
        self.b.wait_for(lambda: "took over 2 unfinished HTTP jobs" in self.b.daemon_log(),
                        4 * float(LEASE) + 10, "b to take a's jobs over")
        self.assertLess(time.time() - died, 3 * float(LEASE) + 5)
        open(self.mark, "w").close()
        self.b.wait_for(lambda: all(self.job(j)[0] == "succeeded" for j in running), 30,
                        "a's jobs to finish on b")
        for j in running:
            state, attempts, interruptions = self.job(j)
            self.assertEqual((attempts, interruptions), (1, 1))  # cut short once, run once more
        owners = {o for (o,) in self.b.query("SELECT DISTINCT lease_owner FROM jobs")}
        self.assertEqual(len(owners), 1)  # all b's now
        self.assertEqual(self.b.stop(), 0)


if __name__ == "__main__":
    harness.main()
