"""`sluice command-runner` in place of Mozilla's command_runner.py, driven as its users drive
it: a producer that is Mozilla's QueueDir (add() runs cleanup(), which moves items older than
cleanup_time out of cur/ back into new/), the production command line, and the item logs that
scrapers read, line by line."""

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

import harness


class MozillaQueueDir:
    """Mozilla's QueueDir, producer side (lib/python/mozilla_buildtools/queuedir.py), ported
    to Python 3 line for line: add() writes into tmp/, renames into new/, then cleans up."""

    def __init__(self, queue_dir, cleanup_time=300):
        self.queue_dir = queue_dir
        self.cleanup_time = cleanup_time
        self.pid = os.getpid()
        self.started = int(time.time())
        self.count = 0
        self.last_cleanup = 0
        self.tmp_dir = os.path.join(queue_dir, "tmp")
        self.new_dir = os.path.join(queue_dir, "new")
        self.cur_dir = os.path.join(queue_dir, "cur")
        self.log_dir = os.path.join(queue_dir, "logs")
        self.dead_dir = os.path.join(queue_dir, "dead")
        for d in (self.tmp_dir, self.new_dir, self.cur_dir, self.log_dir, self.dead_dir):
            os.makedirs(d, exist_ok=True)
        self.cleanup()

    def cleanup(self):
        now = time.time()
        if now - self.last_cleanup < self.cleanup_time:
            return
        self.last_cleanup = now
        for d in (self.tmp_dir, self.log_dir):
            for f in os.listdir(d):
                fn = os.path.join(d, f)
                try:
                    if os.path.getmtime(fn) < now - self.cleanup_time:
                        os.unlink(fn)
                except OSError:
                    pass
        for f in os.listdir(self.cur_dir):
            fn = os.path.join(self.cur_dir, f)
            try:
                if os.path.getmtime(fn) < now - self.cleanup_time:
                    self.requeue(f)
            except OSError:
                pass

    def add(self, data):
        fd, tmp_name = tempfile.mkstemp(prefix="%i-%i-%i" % (self.started, self.count, self.pid),
                                        dir=self.tmp_dir)
        os.write(fd, data.encode())
        os.close(fd)
        dst_name = os.path.join(self.new_dir, os.path.basename(tmp_name))
        os.rename(tmp_name, dst_name)
        self.count += 1
        self.cleanup()
        return os.path.basename(tmp_name)

    def requeue(self, item_id):
        try:
            bits = item_id.split(".")
            core_item_id = ".".join(bits[:-1])
            count = int(bits[-1]) + 1
        except ValueError:
            core_item_id = item_id
            count = 1
        dst_name = os.path.join(self.new_dir, "%s.%i" % (core_item_id, count))
        try:
            os.rename(os.path.join(self.cur_dir, item_id), dst_name)
            os.utime(dst_name, None)
        except OSError:
            pass


class QueuedirCompatTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()
        self.q = os.path.join(self.box.dir, "commands")
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.box.close()

    def runner(self, *flags):
        with open(os.path.join(self.box.dir, "runner.out"), "ab") as out:
            self.proc = subprocess.Popen([harness.SLUICE, "command-runner"] + list(flags),
                                         stdout=out, stderr=out)

    def wait(self, pred, what, timeout=60):
        deadline = time.time() + timeout
        while not pred():
            self.assertIsNone(self.proc.poll(), "the runner exited waiting for " + what)
            self.assertLess(time.time(), deadline, "timed out waiting for " + what)
            time.sleep(0.1)

    def test_a_producer_cleaning_up_every_two_seconds_never_gets_a_job_run_twice(self):
        producer = MozillaQueueDir(self.q, cleanup_time=2)
        ran = os.path.join(self.box.dir, "ran")
        # One long command (6 s, three cleanup periods) and a backlog behind it that waits
        # in new/ longer than cleanup_time, one runner slot.
        items = [producer.add(json.dumps(["/bin/sh", "-c", "echo long >> %s; sleep 6" % ran]))]
        for i in range(6):
            items.append(producer.add(json.dumps(["/bin/sh", "-c",
                                                  "echo %d >> %s; sleep 0.3" % (i, ran)])))
        self.runner("-q", self.q, "-j", "1", "-r", "5", "-t", "0", "-m", "60")
        deadline = time.time() + 60
        while len(os.listdir(os.path.join(self.q, "new"))) + len(
                os.listdir(os.path.join(self.q, "cur"))) > 0:
            self.assertLess(time.time(), deadline, "the queue never drained")
            self.assertIsNone(self.proc.poll())
            producer.add(json.dumps(["/bin/true"]))  # every add() runs its cleanup
            time.sleep(0.5)
        time.sleep(0.5)
        with open(ran) as f:
            lines = f.read().split()
        self.assertEqual(lines.count("long"), 1, lines)
        for i in range(6):
            self.assertEqual(lines.count(str(i)), 1, lines)
        self.assertEqual(os.listdir(os.path.join(self.q, "dead")), [])
        with open(os.path.join(self.box.dir, "runner.out")) as f:
            self.assertNotIn("conflict", f.read())

    def test_the_production_command_line_and_logs_as_command_runner_writes_them(self):
        producer = MozillaQueueDir(self.q)
        ok = producer.add(json.dumps(["/bin/sh", "-c", "echo out; sleep 0.1; echo err >&2"]))
        fails = producer.add(json.dumps(["/bin/sh", "-c", "echo \"it's\"; exit 3"]))
        missing = producer.add(json.dumps(["/nonexistent/command", "x"]))
        garbage = producer.add("{not json")
        runner_log = os.path.join(self.box.dir, "runner.log")
        # command_runner.py's production line, long spellings too.
        self.runner("-q", self.q, "-r", "1", "-t", "1", "-m", "60", "--jobs", "2",
                    "--logfile", runner_log, "-v")
        self.wait(lambda: sorted(os.listdir(os.path.join(self.q, "dead"))) == sorted(
            [fails + ".1", fails + ".1.log", missing + ".1", missing + ".1.log", garbage,
             garbage + ".log"]) and not os.listdir(os.path.join(self.q, "cur")), "every item")
        with open(os.path.join(self.q, "logs", ok + ".log")) as f:
            lines = f.read().split("\n")
        self.assertEqual(lines[:4], ["Running ['/bin/sh', '-c', 'echo out; sleep 0.1; echo err >&2']",
                                     "out", "err", ""])
        self.assertRegex(lines[4], r"^Result: 0, Elapsed: \d+\.\d seconds$")
        self.assertEqual(lines[5:], [""])
        with open(os.path.join(self.q, "dead", fails + ".1.log")) as f:
            text = f.read()
        attempt = ("Running ['/bin/sh', '-c', 'echo \"it\\'s\"; exit 3']\nit's\n\n"
                   "Result: 3, Elapsed: 0.0 seconds\n")
        self.assertEqual(re.sub(r"Elapsed: \d+\.\d", "Elapsed: 0.0", text), attempt * 2)
        with open(os.path.join(self.q, "dead", missing + ".1.log")) as f:
            self.assertEqual(f.read(), ("Running ['/nonexistent/command', 'x']\n\n"
                                        "Failed with OSError; requeuing in 1 seconds\n") * 2)
        with open(os.path.join(self.q, "dead", garbage + ".log")) as f:
            self.assertEqual(f.read(), "Couldn't load json; murdering\n")
        # Its own log in command_runner's "time - message" format, to the file only (written
        # out within a second).
        murdered = "Maximum retry count exceeded; murdering " + fails + ".1"
        self.wait(lambda: murdered in open(runner_log).read(), "the runner's log", 10)
        with open(runner_log) as f:
            own = f.read().splitlines()
        self.assertTrue(own)
        for line in own:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - ")
        self.assertTrue(any(fails + " failed; requeuing" in line for line in own))
        self.assertTrue(any(murdered in line for line in own))

    def test_defaults_are_command_runners_and_retry_dead_is_a_plain_move(self):
        producer = MozillaQueueDir(self.q)
        item = producer.add(json.dumps(["/bin/false"]))
        self.runner(self.q)  # -r 1 -t 0 -m 60: one retry, at once
        dead = os.path.join(self.q, "dead")
        self.wait(lambda: sorted(os.listdir(dead)) == [item + ".1", item + ".1.log"],
                  "the item to die after one retry")
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        old = os.stat(os.path.join(dead, item + ".1")).st_mtime
        r = subprocess.run([harness.SLUICE, "retry-dead", self.q], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        new = os.path.join(self.q, "new")
        self.assertEqual(os.listdir(new), [item + ".1"])  # the retry count kept
        self.assertEqual(os.stat(os.path.join(new, item + ".1")).st_mtime, old)
        self.assertEqual(os.listdir(dead), [])
        # sluice check answers as check_queuedir.py does, from the directories alone.
        r = subprocess.run([harness.SLUICE, "check", "-w", "1", "-c", "5", "-t", "900", self.q],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout), (1, "1 new items\n"))
        os.rename(os.path.join(new, item + ".1"), os.path.join(dead, item + ".1"))
        r = subprocess.run([harness.SLUICE, "check", self.q], capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout), (2, "1 dead item\n"))


if __name__ == "__main__":
    harness.main()
