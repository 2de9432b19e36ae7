"""Mozilla queuedir compatibility: producers that follow the queuedir protocol (write into
tmp/, rename into new/) feed `sluice command-runner` unchanged; a failed item waits in cur/ for
its retry, as command_runner keeps it (also across a restart), then goes back into new/ as
<id>.N; past max retries items go to dead/ with their log (dead/<item>.log); kill -9 with
commands in cur/ counts the attempt; `sluice retry-dead` moves items back as they are."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
import unittest

import harness


class Producer:
    """Writes items as Mozilla's QueueDir.add does: tmp/ then a rename into new/."""

    def __init__(self, root):
        self.root = root
        self.count = 0
        for d in ("tmp", "new", "cur", "logs", "dead"):
            os.makedirs(os.path.join(root, d), exist_ok=True)

    def add(self, job, retries=None):
        self.count += 1
        item = "%d-%d-%d%08x" % (time.time(), self.count, os.getpid(), random.getrandbits(32))
        if retries is not None:
            item += ".%d" % retries
        tmp = os.path.join(self.root, "tmp", item)
        with open(tmp, "w") as f:
            f.write(job if isinstance(job, str) else json.dumps(job))
        os.rename(tmp, os.path.join(self.root, "new", item))
        return item


class QueuedirTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()
        self.q = os.path.join(self.box.dir, "queue")
        self.producer = Producer(self.q)
        self.db = os.path.join(self.q, "sluice.db")
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.box.close()

    def start(self, *flags):
        self.log = open(os.path.join(self.box.dir, "runner.log"), "ab")
        self.proc = subprocess.Popen([harness.SLUICE, "command-runner", self.q] + list(flags),
                                     stdout=self.log, stderr=self.log)

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.log.close()

    def ls(self, sub):
        return sorted(os.listdir(os.path.join(self.q, sub)))

    def jobs(self):
        if not os.path.exists(self.db):
            return {}
        try:
            rows = self.box.query_db(self.db, "SELECT name, state, attempts FROM jobs")
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):  # the runner made the file, not its tables yet
                return {}
            raise
        return {name: (state, attempts) for name, state, attempts in rows}

    def wait(self, pred, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            if self.proc.poll() is not None:
                raise AssertionError("command-runner exited while waiting for " + what)
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s: %s" % (what, self.jobs()))

    def test_a_second_runner_on_the_same_queuedir_refuses_to_start(self):
        # It would take the first one's item in cur/ for a crash's leftover and run it again.
        marks = os.path.join(self.box.dir, "marks")
        item = self.producer.add(["/bin/sh", "-c", "echo x >> %s; sleep 3" % marks])
        self.start("-v")
        self.wait(lambda: self.ls("cur") == [item], "the item to run")
        for extra in ([], ["--database", "sqlite:" + os.path.join(self.box.dir, "other.db")]):
            r = subprocess.run([harness.SLUICE, "command-runner", self.q, "-v"] + extra,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("another daemon", r.stderr)
        self.wait(lambda: self.jobs().get(item, ("",))[0] == "succeeded", "the item", 60)
        with open(marks) as f:
            self.assertEqual(f.read(), "x\n")  # ran once
        self.stop()

    def test_a_backlog_runs_oldest_first_and_what_comes_meanwhile_takes_its_place(self):
        # The runner keeps new/ in memory between claims (listing it for every claim made a
        # backlog of N items cost N^2) and learns of new items from inotify: the order stays
        # command_runner's, oldest modification time first, for the backlog and newcomers.
        marks = os.path.join(self.box.dir, "marks")

        def job(name):
            return ["/bin/sh", "-c", "echo %s >> %s; sleep 0.01" % (name, marks)]
        backlog = 200
        for i in range(backlog):
            item = self.producer.add(job("b%d" % i))
            t = 1_600_000_000 - i  # b199 is the oldest
            os.utime(os.path.join(self.q, "new", item), (t, t))

        def ran():
            if not os.path.exists(marks):
                return []
            with open(marks) as f:
                return f.read().split()
        self.start("-j", "1")
        self.wait(lambda: len(ran()) >= 20, "the backlog to start")
        before = len(ran())
        for i in range(3):  # older than every item left: they run next
            name = "late%d-%d" % (i, os.getpid())
            tmp = os.path.join(self.q, "tmp", name)
            with open(tmp, "w") as f:
                json.dump(job("late%d" % i), f)
            t = 1_000_000_000 + i
            os.utime(tmp, (t, t))
            os.rename(tmp, os.path.join(self.q, "new", name))
        self.wait(lambda: len(ran()) == backlog + 3, "every item", 120)
        order = ran()
        self.assertEqual([n for n in order if n.startswith("b")],
                         ["b%d" % i for i in reversed(range(backlog))])
        late = [order.index("late%d" % i) for i in range(3)]
        self.assertEqual(late, sorted(late))
        # At most the item running and the one claimed for the next turn came between.
        self.assertLessEqual(late[0], before + 2, order)
        self.assertEqual(late[2] - late[0], 2, order)
        self.wait(lambda: self.ls("new") + self.ls("cur") == [], "the last item to end")
        self.stop()

    def test_retries_one_log_dead_and_retry_dead(self):
        counter = os.path.join(self.box.dir, "count")
        flaky = self.producer.add(["/bin/sh", "-c",
                                   "n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); "
                                   "echo $n > %s; echo attempt $n; [ $n -ge 3 ]" % (counter, counter)])
        hopeless = self.producer.add({"argv": ["/bin/sh", "-c", "echo nope >&2; exit 4"]})
        garbage = self.producer.add("{not json")
        # A producer's own retry suffix: the job is the id without it.
        resumed = self.producer.add(["/bin/true"], retries=2).rsplit(".", 1)[0]
        self.start("-j", "2", "-r", "2", "-t", "0.2")
        done = lambda n: self.jobs().get(n, ("",))[0] in ("succeeded", "failed")
        self.wait(lambda: all(done(n) for n in (flaky, hopeless, garbage, resumed)), "all items")
        jobs = self.jobs()
        self.assertEqual(jobs[flaky], ("succeeded", 3))
        self.assertEqual(jobs[hopeless], ("failed", 3))
        self.assertEqual(jobs[garbage], ("failed", 1))
        self.assertEqual(jobs[resumed], ("succeeded", 3))  # its first try here was attempt 3
        with open(os.path.join(self.q, "logs", flaky + ".log")) as f:
            log = f.read()
        self.assertEqual(log.count("Running "), 3)
        self.assertEqual([l for l in log.splitlines() if l.startswith("attempt")],
                         ["attempt 1", "attempt 2", "attempt 3"])
        self.assertIn("Result: 0, Elapsed:", log)
        self.assertEqual(self.ls("new"), [])
        self.assertEqual(self.ls("cur"), [])
        # dead/<item>.log: the item's whole name, retry suffix included (command_runner's).
        self.assertEqual(self.ls("dead"), sorted([hopeless + ".2", hopeless + ".2.log", garbage,
                                                  garbage + ".log"]))
        with open(os.path.join(self.q, "dead", hopeless + ".2.log")) as f:
            dead_log = f.read()
        self.assertEqual(dead_log.count("nope\n"), 3)  # stderr as the command wrote it
        with open(os.path.join(self.q, "dead", garbage + ".log")) as f:
            self.assertEqual(f.read(), "Couldn't load json; murdering\n")
        error = self.box.query_db(self.db, "SELECT error_message FROM jobs WHERE name=?",
                                  hopeless)[0][0]
        self.assertIn("gave up after 3 attempts", error)

        # retry-dead: a plain mv back into new/ (names, so retry counts, kept) without the
        # logs, as Mozilla's retry_dead_queue; they run again.
        r = subprocess.run([harness.SLUICE, "retry-dead", self.q], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.split()), sorted([hopeless + ".2", garbage]))
        runs = lambda: self.box.query_db(self.db, "SELECT COUNT(*) FROM jobs WHERE name=? AND "
                                         "state='failed'", hopeless)[0][0]
        self.wait(lambda: runs() == 2 and len(self.ls("dead")) == 4,
                  "the dead items to run (as new jobs) and die again")
        with open(os.path.join(self.q, "dead", hopeless + ".2.log")) as f:
            # Past its retries already: one more try, then dead; the old log was dropped.
            self.assertEqual(f.read().count("Running "), 1)
        self.stop()

    def test_delayed_retries_wait_in_cur_and_survive_a_restart(self):
        item = self.producer.add(["/bin/false"])
        self.start("-r", "1", "-t", "3")
        self.wait(lambda: self.jobs().get(item, ("",))[0] == "retrying", "the first failure")
        failed_at = time.time()
        # As command_runner keeps it: in cur/, touched, not in new/ before it is due.
        self.assertEqual((self.ls("cur"), self.ls("new")), ([item], []))
        self.stop()
        self.start("-r", "1", "-t", "3")
        time.sleep(1)
        self.assertEqual((self.ls("cur"), self.ls("new")), ([item], []))  # waits on
        self.wait(lambda: self.jobs().get(item, ("",))[0] == "failed", "the retry to run")
        self.assertGreaterEqual(time.time(), failed_at + 2.5)
        self.assertEqual(self.ls("dead"), sorted([item + ".1", item + ".1.log"]))
        self.stop()

    def test_kill_9_while_commands_run(self):
        done = os.path.join(self.box.dir, "done.txt")
        items = [self.producer.add(["/bin/sh", "-c", "sleep 0.3; echo %d >> %s" % (i, done)])
                 for i in range(12)]
        self.start("-j", "3", "-r", "5", "-t", "0")
        self.wait(lambda: sum(s == "succeeded" for s, _ in self.jobs().values()) >= 3,
                  "some to finish")
        self.stop(signal.SIGKILL)
        in_cur = self.ls("cur")
        succeeded = {n for n, (s, _) in self.jobs().items() if s == "succeeded"}
        self.start("-j", "3", "-r", "5", "-t", "0")
        self.wait(lambda: len(self.jobs()) == 12 and
                  all(s == "succeeded" for s, _ in self.jobs().values()), "every item")
        self.stop()
        with open(done) as f:
            finished = f.read().split()
        for i, item in enumerate(items):
            self.assertGreaterEqual(finished.count(str(i)), 1)
            if item in succeeded:
                self.assertEqual(finished.count(str(i)), 1, "succeeded before the kill, ran again")
        for item in in_cur:  # found in cur/ after the crash: that attempt counted
            base = item.split(".")[0]
            if base not in succeeded:
                self.assertGreaterEqual(self.jobs()[base][1], 2, base)
        self.assertEqual(self.ls("cur") + self.ls("new") + self.ls("dead"), [])

    def test_in_cur_after_a_crash_respects_max_retries(self):
        item = self.producer.add(["/bin/true"])
        os.rename(os.path.join(self.q, "new", item), os.path.join(self.q, "cur", item))
        self.start("-r", "0")
        self.wait(lambda: self.ls("dead") == sorted([item]) or
                  self.ls("dead") == sorted([item, item + ".log"]), "it to go dead")
        # The item's move and its job's record are two steps: wait for the record too.
        error = lambda: self.box.query_db(self.db, "SELECT error_message FROM jobs WHERE name=?",
                                          item)[0][0]
        self.wait(lambda: error() is not None, "the failure recorded")
        self.assertIn("interrupted", error())
        self.stop()
        r = subprocess.run([harness.SLUICE, "check", "--spool-dir", self.q], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertTrue(r.stdout.startswith("SLUICE CRITICAL - "), r.stdout)
        self.assertIn("failed=1;", r.stdout)


if __name__ == "__main__":
    harness.main()
