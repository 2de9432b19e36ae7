"""Socorro's priority and deferred work: files in deferred/ are registered and never run on
their own; `sluice promote` moves them in; `sluice priority NAME` finds a job, a spool file
not registered yet, or a deferred file, and runs it next."""

import http.client
import json
import os
import signal
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness


class DeferredTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.deferred = os.path.join(self.box.spool, "deferred")

    def tearDown(self):
        self.box.close()

    def start(self, *extra):
        self.box.start(*extra)
        self.api = "http://127.0.0.1:%d" % self.box.wait_for_api()

    def defer(self, name, content=None):
        os.makedirs(self.deferred, exist_ok=True)
        with open(os.path.join(self.deferred, name), "w") as f:
            json.dump(content or harness.GOOD, f)

    def states(self):
        return dict(self.box.query("SELECT name, state FROM jobs"))

    def cli(self, *args):
        r = self.box.sluice(*args, "--api", self.api)
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else r.stderr

    def test_deferred_files_wait_until_promoted(self):
        self.defer("a.json")
        self.defer("b.json")
        self.defer("c.json")
        self.start()
        self.box.wait_for(lambda: len(self.states()) == 3, what="registered")
        time.sleep(2.5)  # two rescans: still not run
        self.assertEqual(set(self.states().values()), {"deferred"})
        self.assertEqual(sorted(os.listdir(self.deferred)), ["a.json", "b.json", "c.json"])
        rc, out = self.cli("promote", "a.json")
        self.assertEqual((rc, out), (0, {"promoted": ["a.json"]}))
        self.box.wait_for(lambda: self.states()["a.json"] == "succeeded")
        # The file moves just after its job's commit (the mover runs behind the writer).
        self.box.wait_for(lambda: "a.json" in self.box.listing("archive"), 10, "a.json archived")
        # kill -9 and restart: the rest are still deferred, and not run twice or lost.
        self.box.stop(signal.SIGKILL)
        open(os.path.join(self.box.dir, "daemon.log"), "w").close()
        self.start()
        time.sleep(1.5)
        self.assertEqual(self.states(), {"a.json": "succeeded", "b.json": "deferred",
                                         "c.json": "deferred"})
        rc, out = self.cli("promote", "--all")
        self.assertEqual((rc, sorted(out["promoted"])), (0, ["b.json", "c.json"]))
        self.box.wait_for(lambda: set(self.states().values()) == {"succeeded"})
        self.assertEqual(len(self.box.query("SELECT id FROM jobs")), 3)
        self.assertEqual(os.listdir(self.deferred), [])
        rc, out = self.cli("promote", "nope.json")
        self.assertEqual(rc, 3, out)

    def test_promoting_thousands_keeps_the_api_answering_and_runs_each_once(self):
        # An fsync per file on the HTTP I/O thread made promote --all of 5,000 files take 4 s
        # with every connection and event stream stalled behind it.
        os.makedirs(self.deferred, exist_ok=True)
        for i in range(20000):
            with open(os.path.join(self.deferred, "d%05d.json" % i), "w") as f:
                json.dump(harness.GOOD, f)
        self.start("--max-workers", "2")
        answered = []  # (sent, answered) of /healthz calls made while the promote ran
        done = threading.Event()

        def probe():
            while not done.is_set():
                sent = time.monotonic()
                c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=60)
                c.request("GET", "/healthz")
                c.getresponse().read()
                c.close()
                answered.append((sent, time.monotonic()))
                time.sleep(0.01)
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=300)
        started = time.monotonic()
        c.request("POST", "/api/v1/promote", body=json.dumps({"all": True}))
        prober = threading.Thread(target=probe)
        prober.start()
        r = c.getresponse()
        body = json.loads(r.read())
        ended = time.monotonic()
        done.set()
        prober.join()
        self.assertEqual((r.status, len(body["promoted"])), (200, 20000))
        # Every /healthz sent while the promote ran was answered at once, not after it.
        waits = [a - s for s, a in answered if s > started]
        self.assertTrue(waits)
        self.assertLess(max(waits), 2.0, "the promote took %.2f s" % (ended - started))
        self.box.wait_for(lambda: len(self.box.listing("archive")) == 20000, 300, "the drain")
        self.assertEqual(os.listdir(self.deferred), [])
        self.assertEqual(self.box.query("SELECT COUNT(*), COUNT(DISTINCT name) FROM jobs"
                                        " WHERE state = 'succeeded'"), [(20000, 20000)])

    def test_priority_by_name_for_unregistered_deferred_and_unknown_files(self):
        r = self.box.sluice("demo-data", self.box.spool, "--count", "3000",
                            "--tests-per-file", "50")
        self.assertEqual(r.returncode, 0, r.stderr)
        newest = sorted(os.listdir(self.box.spool),
                        key=lambda n: os.stat(os.path.join(self.box.spool, n)).st_mtime_ns)[-1]
        self.defer("urgent.json")
        # A small backlog: most files wait unregistered, the newest among them.
        self.start("--max-backlog", "100", "--max-workers", "1")
        rc, out = self.cli("priority", newest)
        self.assertEqual(rc, 0, out)
        self.assertIn(out["action"], ("registering", "prioritised"))
        rc, out = self.cli("priority", "urgent.json")
        self.assertEqual((rc, out["action"]), (0, "promoted"))
        self.box.wait_for(lambda: self.states().get(newest) == "succeeded" and
                          self.states().get("urgent.json") == "succeeded", 60)
        done = self.box.query("SELECT COUNT(*) FROM jobs WHERE state='succeeded'")[0][0]
        self.assertLess(done, 1000, "the prioritised files waited for the backlog")
        prio = dict(self.box.query("SELECT name, priority FROM jobs WHERE priority > 0"))
        self.assertEqual(prio.get(newest), 1000)
        rc, out = self.cli("priority", "missing.json")
        self.assertEqual(rc, 3, out)
        self.assertEqual(out["error"]["code"], "not_found")
        rc, out = self.cli("priority", "999999")
        self.assertEqual(rc, 3, out)

    def test_deferred_files_are_not_pending_and_a_job_of_one_says_to_promote_it(self):
        # A deferred folder may hold years of files: they are not the spool's backlog, so no
        # metric of pending work counts them (an alert on the oldest pending file must not
        # fire on them), and they are registered a chunk at a time.
        for i in range(25000):
            self.defer("d%05d.json" % i)
        old = os.path.join(self.deferred, "d00000.json")
        os.utime(old, (1_500_000_000, 1_500_000_000))
        self.start()
        self.box.wait_for(lambda: self.box.query(
            "SELECT COUNT(*) FROM jobs WHERE state='deferred'")[0][0] == 25000, 120,
            "the deferred files to be registered")
        self.assertEqual(self.box.daemon_log().count("25000 deferred files registered"), 1)
        with urllib.request.urlopen(self.api + "/metrics") as r:
            metrics = r.read().decode()
        self.assertRegex(metrics, r'sluice_spool_oldest_pending_seconds\{[^}]*\} 0\n')
        self.assertRegex(metrics, r'sluice_spool_backlog\{[^}]*\} 0\n')
        job = self.box.query("SELECT id FROM jobs WHERE name='d00000.json'")[0][0]
        for action in ("cancel", "priority"):
            req = urllib.request.Request("%s/api/v1/jobs/%d/%s" % (self.api, job, action),
                                         data=b"", method="POST")
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req)
            self.assertEqual(e.exception.code, 409)
            self.assertIn("is deferred: promote d00000.json first",
                          json.loads(e.exception.read())["error"]["message"])
        rc, out = self.cli("promote", "d00000.json")
        self.assertEqual((rc, out), (0, {"promoted": ["d00000.json"]}))
        self.box.wait_for(lambda: self.box.query(
            "SELECT state FROM jobs WHERE id=?", job)[0][0] == "succeeded", 30, "the promoted job")
        self.assertEqual(self.box.query("SELECT COUNT(*) FROM jobs")[0][0], 25000)


if __name__ == "__main__":
    harness.main()
