"""How long the store keeps ended jobs: succeeded and cancelled ones --job-max-age (30 days),
failed ones --failed-job-max-age (for ever unless given), each with its events; on SQLite and
PostgreSQL. A job whose file a crash left in the spool keeps its row (the file must not run
again), and an idempotency key is remembered as long as its job is. A queuedir's jobs age
alike, pruned by `sluice command-runner` on its database and by `sluice serve` whose spools
are all queuedirs."""

import http.client
import json
import os
import re
import signal
import subprocess
import time
import unittest
import urllib.request

import harness
from test_queuedir import Producer

DAY_US = 24 * 3600 * 1000000


class RetentionTest(unittest.TestCase):
    STORE = "sqlite"

    def setUp(self):
        self.box = harness.Sandbox(api=True, store=self.STORE)

    def tearDown(self):
        if self.box.proc and self.box.proc.poll() is None:
            self.box.stop()
        self.box.close()

    def count(self, sql, *params):
        return self.box.query(sql, *params)[0][0]

    def age(self, where, days):
        """Makes the jobs matching `where` end `days` days earlier than they did."""
        self.box.query("UPDATE jobs SET finished_at = finished_at - %d WHERE %s"
                       % (days * DAY_US, where))

    def metric(self, name, labels):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.box.port) as r:
            text = r.read().decode()
        m = re.search(r"^%s\{%s\} (\d+)" % (re.escape(name), re.escape(labels)), text, re.M)
        return int(m.group(1)) if m else 0

    def restart(self, *extra):
        """Starts the daemon again, its log begun anew (the API's port is read from it)."""
        log = os.path.join(self.box.dir, "daemon.log")
        os.rename(log, log + ".%d" % len(os.listdir(self.box.dir)))
        self.box.start(*extra)
        self.box.wait_for_api()

    def submit(self, body):
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        c.request("POST", "/api/v1/jobs", body=json.dumps(body))
        r = c.getresponse()
        data = json.loads(r.read())
        c.close()
        return r.status, data

    def test_old_ended_jobs_go_with_their_events_and_the_rest_stays(self):
        for i in range(1200):  # more than one chunk of 1,000
            self.box.drop("old%04d.json" % i, harness.GOOD)
        for i in range(10):
            self.box.drop("new%d.json" % i, harness.GOOD)
        self.box.drop("oldbad.json", "{")
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        old_ids = [row[0] for row in self.box.query("SELECT id FROM jobs WHERE name LIKE 'old%'")]
        self.assertEqual(len(old_ids), 1201)
        self.age("name LIKE 'old%'", 40)
        bad_id = self.box.query("SELECT id FROM jobs WHERE name = 'oldbad.json'")[0][0]

        self.box.start()
        self.box.wait_for_api()
        self.box.wait_for(lambda: self.count(
            "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'") == 10, 60,
            "the old succeeded jobs to be pruned")
        self.assertEqual(self.box.query("SELECT name FROM jobs WHERE state = 'failed'"),
                         [("oldbad.json",)])  # failed jobs are kept unless told
        self.assertEqual(self.count("SELECT COUNT(*) FROM events WHERE job_id IN (%s)"
                                    % ",".join(str(i) for i in old_ids if i != bad_id)), 0)
        self.assertGreater(self.count("SELECT COUNT(*) FROM events WHERE job_id = ?", bad_id), 0)
        self.assertEqual(self.metric("sluice_jobs", 'queue="default",state="succeeded"'), 10)
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        c.request("GET", "/api/v1/jobs/%d" % old_ids[0])
        self.assertEqual(c.getresponse().status, 404)
        c.close()
        self.assertIn("pruned 1200 ended jobs past the retention", self.box.daemon_log())
        # The files stay where they were put: only the history goes.
        self.assertEqual(len(self.box.listing("archive")), 1210)
        self.assertEqual(self.box.stop(), 0)

        # Failed jobs go once given an age; the young stay.
        self.restart("--failed-job-max-age", "86400")
        self.box.wait_for(lambda: self.count(
            "SELECT COUNT(*) FROM jobs WHERE state = 'failed'") == 0, 30,
            "the old failed job to be pruned")
        self.assertEqual(self.count("SELECT COUNT(*) FROM jobs"), 10)
        self.assertEqual(self.box.listing("failed"), ["oldbad.json", "oldbad.json.error.json"])
        self.assertEqual(self.box.stop(), 0)
        # Its file can still be sent through again by name.
        r = self.box.sluice("retry", "oldbad.json", "--spool-dir", self.box.spool,
                            "--database", self.box.database)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("oldbad.json", self.box.listing())
        self.assertIn("marked 0 jobs retried", r.stdout)  # its job is gone, and says so
        self.assertIn("(1 no longer there", r.stdout)
        os.remove(os.path.join(self.box.spool, "oldbad.json"))

        # 0 keeps them for ever.
        self.age("1 = 1", 4000)
        r = self.box.burst("--job-max-age", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.count("SELECT COUNT(*) FROM jobs"), 10)

    def test_a_burst_prunes_the_whole_history_due_before_it_exits(self):
        # A run from cron has no other time to prune in: it must not leave most of a long
        # history behind each time (three chunks here, on an empty spool).
        for i in range(2500):
            self.box.drop("old%04d.json" % i, harness.GOOD)
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.age("1 = 1", 40)
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.count("SELECT COUNT(*) FROM jobs"), 0)
        self.assertIn("pruned 2500 ended jobs past the retention", r.stderr)

    def test_an_idempotency_key_is_remembered_as_long_as_its_job(self):
        self.box.start()
        self.box.wait_for_api()
        status, job = self.submit({"kind": "kcidb", "payload": harness.GOOD,
                                   "idempotency_key": "sub-42"})
        self.assertEqual(status, 201)
        self.box.wait_for(lambda: self.count("SELECT COUNT(*) FROM jobs WHERE state = "
                                             "'succeeded'") == 1, 30, "the job to succeed")
        self.assertEqual(self.box.stop(), 0)
        self.age("1 = 1", 31)
        self.restart()
        self.box.wait_for(lambda: self.count("SELECT COUNT(*) FROM jobs") == 0, 30,
                          "the job to be pruned")
        status, again = self.submit({"kind": "kcidb", "payload": harness.GOOD,
                                     "idempotency_key": "sub-42"})
        self.assertEqual(status, 201, again)  # a new job: the old one is forgotten
        self.assertGreater(again["id"], job["id"])


class RetentionPostgresTest(RetentionTest):
    STORE = "postgresql"


class RetentionPostgresRestartTest(unittest.TestCase):
    """PostgreSQL restarted (immediate: a crash and a recovery) while a long history is
    pruned: the daemon stays up, a chunk the server failed is taken again, every old job goes
    and the database stays consistent."""

    N = 60000

    def setUp(self):
        self.pg = harness.PgServer()
        self.box = harness.Sandbox(database=self.pg.database())

    def tearDown(self):
        if self.box.proc and self.box.proc.poll() is None:
            self.box.stop()
        self.box.close()
        self.pg.close()

    def count(self):
        try:
            return self.box.query("SELECT COUNT(*) FROM jobs")[0][0]
        except Exception:  # the server is restarting
            return None

    def test_a_restart_of_the_server_while_old_jobs_are_deleted(self):
        r = self.box.burst()  # the schema
        self.assertEqual(r.returncode, 0, r.stderr)
        ended = int(time.time() * 1e6) - 40 * DAY_US
        self.box.query(
            "INSERT INTO jobs(id, queue, kind, spool, name, state, attempts, max_attempts,"
            " created_at, last_tried, finished_at) SELECT i, 'default', 'kcidb', '',"
            " 'old-' || i, 'succeeded', 1, 5, ? + i, ? + i, ? + i FROM generate_series(1, ?) i",
            ended, ended, ended, self.N)
        self.box.query("INSERT INTO events(id, ts, job_id, queue, kind, type, data) SELECT id,"
                       " finished_at, id, 'default', 'kcidb', 'job.succeeded', '{}' FROM jobs")
        self.box.query("UPDATE counters SET value = GREATEST(value, ?) WHERE name IN"
                       " ('jobs', 'events')", self.N)
        self.box.start("--event-max-age", str(3650 * 24 * 3600))  # the jobs take the events
        self.box.wait_for(lambda: (self.count() or self.N) < self.N, 60, "the pruning to start")
        self.pg.restart()
        # A chunk the restart failed is taken again 5 s later, not at the next minute.
        self.box.wait_for(lambda: self.count() == 0, 40, "every old job to be pruned")
        self.assertIsNone(self.box.proc.poll(), "the daemon stayed up")
        self.assertEqual(self.box.query("SELECT COUNT(*) FROM events"), [(0,)])
        self.assertTrue(self.box.integrity())
        self.assertEqual(self.box.stop(), 0)


class RetentionAndCrashTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()

    def tearDown(self):
        self.box.close()

    def test_a_finished_file_a_crash_left_in_the_spool_keeps_its_job_and_is_not_run_again(self):
        # The daemon died after a.json's job committed and before the file's move, and stayed
        # down longer than the retention. At the next start the row is what says the file
        # has run: it must not be pruned before the file is moved.
        self.box.drop("a.json", harness.GOOD)
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        first = self.box.query("SELECT id FROM jobs WHERE name = 'a.json'")
        os.rename(os.path.join(self.box.spool, "archive", "a.json"),
                  os.path.join(self.box.spool, "a.json"))  # the same file, not moved yet
        self.box.query("UPDATE kv SET value = '0' WHERE ns = 'engine.clean_stop'")
        self.box.query("UPDATE jobs SET finished_at = finished_at - %d" % (40 * DAY_US))
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("finished before a restart; moving its file now", r.stderr)
        self.assertEqual(self.box.listing("archive"), ["a.json"])
        # Not run again: no job but the first, which goes once its file is moved (in this
        # run, which prunes what is due before it exits, or at the next round).
        self.assertIn(self.box.query("SELECT id FROM jobs WHERE name = 'a.json'"), ([], first))
        self.assertIn(" 0 succeeded", r.stdout)
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.box.query("SELECT COUNT(*) FROM jobs"), [(0,)])

    def test_sigterm_stops_a_bursts_catch_up_at_once_and_says_what_went(self):
        r = self.box.burst()  # the schema
        self.assertEqual(r.returncode, 0, r.stderr)
        ended = int(time.time() * 1e6) - 40 * DAY_US
        self.box.query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000)"
            " INSERT INTO jobs(id, queue, kind, spool, name, state, attempts, max_attempts,"
            " created_at, last_tried, finished_at) SELECT i, 'default', 'kcidb', '', 'old-' || i,"
            " 'succeeded', 1, 5, ? + i, ? + i, ? + i FROM n", ended, ended, ended)
        proc = subprocess.Popen(self.box.args("--burst"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while self.box.query("SELECT COUNT(*) FROM jobs")[0][0] == 400000 and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        stopped = time.time()
        _, err = proc.communicate(timeout=60)
        self.assertLess(time.time() - stopped, 2, err)
        self.assertEqual(proc.returncode, 0, err)
        left = self.box.query("SELECT COUNT(*) FROM jobs")[0][0]
        self.assertGreater(left, 0)  # stopped before the end
        m = re.search(r"pruned (\d+) ended jobs past the retention so far", err)
        self.assertIsNotNone(m, err)
        self.assertEqual(int(m.group(1)), 400000 - left)

    def test_the_retention_is_the_stores_not_a_spools(self):
        conf = os.path.join(self.box.dir, "sluice.toml")
        for key in ("job_max_age", "failed_job_max_age", "event_max_age", "event_max_count"):
            with open(conf, "w") as f:
                f.write('database = "sqlite:%s"\nno_api = true\n[spool.a]\ndir = "%s"\n%s = 5\n'
                        % (self.box.db, self.box.spool, key))
            r = subprocess.run([harness.SLUICE, "serve", "-c", conf, "--burst"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("[spool.a]: %s is the store's retention" % key, r.stderr)
        with open(conf, "w") as f:
            f.write('database = "sqlite:%s"\nno_api = true\njob_max_age = 5\n[spool.a]\n'
                    'dir = "%s"\n' % (self.box.db, self.box.spool))
        r = subprocess.run([harness.SLUICE, "serve", "-c", conf, "--burst"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)


class QueuedirRetentionTest(unittest.TestCase):
    STORE = "sqlite"

    def setUp(self):
        self.box = harness.Sandbox(store=self.STORE)
        self.q = os.path.join(self.box.dir, "queue")
        self.producer = Producer(self.q)
        self.marks = os.path.join(self.box.dir, "marks")
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.box.close()

    def start(self, *argv):
        self.log_path = os.path.join(self.box.dir, "runner.log")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([harness.SLUICE] + list(argv) +
                                         ["--database", self.box.database],
                                         stdout=log, stderr=log)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=60), 0)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def jobs(self):
        try:
            rows = self.box.query("SELECT name, state FROM jobs")
        except Exception:  # the runner made the database, not its tables yet
            return {}
        return dict(rows)

    def wait(self, pred, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            self.assertIsNone(self.proc.poll(), "exited while waiting for " + what)
            time.sleep(0.05)
        self.fail("timed out waiting for %s: %s" % (what, self.jobs()))

    def run_items(self, n, *argv):
        items = [self.producer.add(["/bin/sh", "-c", "echo %d >> %s" % (i, self.marks)])
                 for i in range(n)]
        self.start(*argv)
        self.wait(lambda: sorted(self.jobs().items()) == [(i, "succeeded") for i in sorted(items)],
                  "the items to run")
        self.stop()
        return items

    def age(self, items, days):
        for item in items:
            self.box.query("UPDATE jobs SET finished_at = finished_at - %d WHERE name = ?"
                           % (days * DAY_US), item)

    def test_command_runner_prunes_old_jobs_and_an_item_a_crash_left_in_cur_does_not_run_again(self):
        runner = ["command-runner", self.q, "-v"]
        items = self.run_items(3, *runner)
        # The runner died after the success of items[0] was recorded and before the item's
        # deletion from cur/, then stayed down past the retention.
        with open(os.path.join(self.q, "cur", items[0]), "w") as f:
            f.write("[\"/bin/sh\", \"-c\", \"echo again >> %s\"]" % self.marks)
        self.age(items[:2], 40)
        self.age(items[2:], 10)
        self.start(*runner)
        self.wait(lambda: "pruned 2 ended jobs past the retention" in self.log(), "the pruning")
        self.assertEqual(sorted(self.jobs()), [items[2]])
        self.assertEqual(os.listdir(os.path.join(self.q, "cur")), [])
        self.stop()
        with open(self.marks) as f:
            self.assertEqual(sorted(f.read().split()), ["0", "1", "2"])  # none ran again
        # --job-max-age 0 keeps every job.
        self.age(items[2:], 40)
        self.start(*(runner + ["--job-max-age", "0"]))
        time.sleep(1)
        self.stop()
        self.assertEqual(sorted(self.jobs()), [items[2]])
        self.assertNotIn("pruned 1 ended", self.log())

    def test_serve_whose_spools_are_all_queuedirs_prunes(self):
        # A queuedir has no writer: the daemon's main loop prunes.
        serve = ["serve", "--spool-dir", self.q, "--layout", "queuedir", "--kind", "exec",
                 "--no-api"]
        items = self.run_items(2, *serve)
        self.age(items[:1], 40)
        self.start(*serve)
        self.wait(lambda: "pruned 1 ended jobs past the retention" in self.log(), "the pruning")
        self.assertEqual(sorted(self.jobs()), items[1:])
        self.stop()


class QueuedirRetentionPostgresTest(QueuedirRetentionTest):
    """On a shared database a command-runner prunes once it holds the pruner lease."""
    STORE = "postgresql"


if __name__ == "__main__":
    harness.main()
