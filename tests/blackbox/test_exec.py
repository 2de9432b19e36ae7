"""The exec handler (command_runner's jobs) on a spool: a command that fails twice then
succeeds, one log with all three attempts; max_time escalation that kills a command ignoring
SIGINT and SIGTERM together with its children; output as live job.log events; bad input and
the allowlist; kill -9 while commands run."""

import json
import os
import signal
import subprocess
import time
import unittest
import urllib.request

import harness


def alive(pid):
    """Running (a zombie waiting for a reaper that never comes, in a container, is dead)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class ExecTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)

    def tearDown(self):
        self.box.close()

    def start(self, *extra):
        log = os.path.join(self.box.dir, "daemon.log")
        if os.path.exists(log):
            os.rename(log, log + ".before")
        self.box.start("--kind", "exec", "--max-attempts", "5", "--retry-delay", "0.1",
                       "--retry-max-delay", "0.2", *extra)
        self.api = "http://127.0.0.1:%d" % self.box.wait_for_api()

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=30) as r:
            return r.read().decode()

    def states(self):
        return dict(self.box.query("SELECT name, state FROM jobs"))

    def job(self, name):
        rows = self.box.query("SELECT id, state, attempts, error_code FROM jobs WHERE name=?", name)
        return rows[-1] if rows else None

    def wait_state(self, name, *states, timeout=30):
        self.box.wait_for(lambda: self.job(name) and self.job(name)[1] in states, timeout,
                          "%s to be %s" % (name, states))
        return self.job(name)

    @staticmethod
    def whole_line(path):
        """The file's first line once its newline is written, else None."""
        if not os.path.exists(path):
            return None
        with open(path) as f:
            text = f.read()
        return text.split("\n")[0] if "\n" in text else None

    def test_fails_twice_then_succeeds_with_one_log(self):
        self.start()
        counter = os.path.join(self.box.dir, "count")
        script = ('n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; '
                  'echo "attempt $n"; [ $n -ge 3 ]' % (counter, counter))
        self.box.drop("flaky.json", ["/bin/sh", "-c", script])
        job_id, state, attempts, _ = self.wait_state("flaky.json", "succeeded", "failed")
        self.assertEqual((state, attempts), ("succeeded", 3))
        log = self.get("/api/v1/jobs/%d/log" % job_id)
        self.assertEqual(log.count("Running [\"/bin/sh\""), 3)
        self.assertEqual([l for l in log.splitlines() if l.startswith("attempt")],
                         ["attempt 1", "attempt 2", "attempt 3"])
        self.assertEqual(log.count("Result: 1, Elapsed:"), 2)
        self.assertIn("Result: 0, Elapsed:", log)
        self.assertIn("archive", os.listdir(self.box.spool))
        self.box.wait_for(lambda: "flaky.json" in self.box.listing("archive"), 10, "the archive")

    def test_max_time_kills_the_group_that_ignores_int_and_term(self):
        self.start("--kill-grace", "0.3")
        pidfile = os.path.join(self.box.dir, "child.pid")
        script = "trap '' INT TERM; sleep 300 & echo $! > %s; wait; sleep 300" % pidfile
        self.box.drop("stuck.json", {"argv": ["/bin/sh", "-c", script], "max_time": 0.5})
        # The shell creates the file before it writes the pid: wait for the whole line.
        self.box.wait_for(lambda: self.whole_line(pidfile), 10, "the child")
        child = int(self.whole_line(pidfile))
        t0 = time.time()
        self.box.wait_for(lambda: self.job("stuck.json")[1] in ("retrying", "failed"), 10,
                          "the first attempt to end")
        self.assertLess(time.time() - t0, 5)
        self.box.wait_for(lambda: not alive(child), 5, "the child to go with its group")
        job_id = self.job("stuck.json")[0]
        self.assertEqual(self.job("stuck.json")[3], "command_timed_out")
        self.assertIn("stopped at max_time", self.box.query(
            "SELECT error_message FROM jobs WHERE id=?", job_id)[0][0])

    def test_a_file_renamed_over_a_running_jobs_file_is_run_not_archived_unread(self):
        # Regression: the first job's end moved whatever the name held by then, so a new
        # submission renamed over it (the way a producer should write) went to archive/ (or
        # failed/ with the first one's reason) without ever running.
        self.start()
        d = self.box.dir
        for first_fails in (False, True):
            name = "over-%d.json" % first_fails
            started, second = os.path.join(d, "started-%s" % name), os.path.join(d, "ran-%s" % name)
            self.box.drop(name, ["/bin/sh", "-c", "touch %s; sleep 1.5; exit %d" % (
                started, 1 if first_fails else 0)])
            self.box.wait_for(lambda: os.path.exists(started), 10, "the first command")
            self.box.drop(name, ["/bin/sh", "-c", "echo second >> %s" % second])
            self.box.wait_for(lambda: os.path.exists(second), 30, "the second submission to run")
            self.box.wait_for(lambda: name in self.box.listing("archive"), 30, "the archive")
            with open(os.path.join(self.box.spool, "archive", name)) as f:
                self.assertIn("echo second", f.read())
            self.assertNotIn(name, self.box.listing())
            self.assertNotIn(name, self.box.listing("failed"))
            # A first job that failed is not retried on the second file (which runs once, as
            # its own job): it ends cancelled, as file_replaced.
            time.sleep(1)
            with open(second) as f:
                self.assertEqual(f.read(), "second\n")
            jobs = json.loads(self.get("/api/v1/jobs?name=%s" % name))["jobs"]
            self.assertEqual(sorted(j["state"] for j in jobs),
                             ["cancelled", "succeeded"] if first_fails else
                             ["succeeded", "succeeded"], jobs)
            if first_fails:
                self.assertEqual([j["error"]["code"] for j in jobs if j["state"] == "cancelled"],
                                 ["file_replaced"])
        self.assertIn("another file was put under its name while its job ran",
                      open(os.path.join(d, "daemon.log")).read())
        self.assertEqual(self.box.stop(), 0)

    def test_a_command_writing_to_its_own_file_runs_once(self):
        # Regression: a file written in place while its job ran was taken again as a new
        # submission, so a command appending to its own file ran over and over.
        self.start()
        d = self.box.dir
        runs = os.path.join(d, "runs")
        path = os.path.join(self.box.spool, "self.json")
        self.box.drop("self.json", ["/bin/sh", "-c", "echo ran >> %s; echo ' ' >> %s" % (
            runs, path)])
        self.box.wait_for(lambda: "self.json" in self.box.listing("archive"), 30, "the archive")
        time.sleep(1.5)
        with open(runs) as f:
            self.assertEqual(f.read(), "ran\n")
        with open(os.path.join(self.box.spool, "archive", "self.json")) as f:
            self.assertTrue(f.read().endswith(" \n"))  # moved as its command left it
        self.assertNotIn("self.json", self.box.listing())
        self.assertIn("the file was written to while its job ran; it goes with its job",
                      open(os.path.join(d, "daemon.log")).read())
        self.assertEqual(self.box.stop(), 0)

    def test_stray_signals_do_not_end_the_daemon_and_commands_get_their_defaults(self):
        # The daemon ignores SIGPIPE (a write to a connection cut by a restarted database or
        # broker is an error to handle, not its end), SIGUSR1 and SIGUSR2; what it runs must
        # not inherit that, nor its blocked signals.
        self.start()
        for sig in (signal.SIGPIPE, signal.SIGUSR1, signal.SIGUSR2):
            os.kill(self.box.proc.pid, sig)
        self.box.drop("sigign.json", ["/bin/grep", "^Sig\\(Ign\\|Blk\\)", "/proc/self/status"])
        job_id, state, _, _ = self.wait_state("sigign.json", "succeeded", "failed")
        self.assertEqual(state, "succeeded")
        self.assertIsNone(self.box.proc.poll())
        log = self.get("/api/v1/jobs/%d/log" % job_id).splitlines()
        for field in ("SigIgn:", "SigBlk:"):
            line = [l for l in log if l.startswith(field)]
            self.assertEqual(len(line), 1, log)
            mask = int(line[0].split()[1], 16)
            for sig in (signal.SIGPIPE, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
                self.assertEqual(mask & (1 << (sig - 1)), 0, line)
        self.assertEqual(self.box.stop(), 0)

    def test_output_arrives_as_live_log_events(self):
        self.start()
        gate = os.path.join(self.box.dir, "gate")
        self.box.drop("slow.json", ["/bin/sh", "-c",
                                    "echo first line; while [ ! -e %s ]; do sleep 0.05; done; "
                                    "echo second line" % gate])
        self.wait_state("slow.json", "running")
        job_id = self.job("slow.json")[0]
        self.box.wait_for(lambda: "first line" in self.get("/api/v1/jobs/%d/log" % job_id), 10,
                          "the first line while the command runs")
        self.assertEqual(self.job("slow.json")[1], "running")
        open(gate, "w").close()
        self.wait_state("slow.json", "succeeded")
        lines = [json.loads(d)["line"] for (d,) in self.box.query(
            "SELECT data FROM events WHERE job_id=? AND type='job.log' ORDER BY id", job_id)]
        self.assertEqual(lines[1:3], ["first line", "second line"])

    def test_a_command_printing_without_end_keeps_the_first_and_last_lines_only(self):
        self.start("--max-log-lines", "100")
        self.box.drop("many.json", ["/usr/bin/seq", "1", "30000"])
        self.box.drop("endless.json", {"argv": ["/usr/bin/yes", "spam"], "max_time": 1})
        self.wait_state("many.json", "succeeded")
        job_id = self.job("many.json")[0]
        lines = [json.loads(d)["line"] for (d,) in self.box.query(
            "SELECT data FROM events WHERE job_id=? AND type='job.log' ORDER BY id", job_id)]
        out = lines[1:-1]  # between "Running …" and "Result: …"
        self.assertEqual(out[:50], [str(i) for i in range(1, 51)])
        self.assertIn("29900 lines of output not kept", out[50])
        self.assertEqual(out[51:], [str(i) for i in range(29951, 30001)])
        self.assertTrue(lines[-1].startswith("Result: 0"), lines[-1])
        # Killed at max_time after millions of lines: a hundred kept per try, the rest counted.
        self.wait_state("endless.json", "retrying", "failed", timeout=60)
        endless = self.job("endless.json")[0]
        kept = self.box.query("SELECT COUNT(*) FROM events WHERE job_id=? AND type='job.log'",
                              endless)[0][0]
        self.assertLessEqual(kept, 110 * self.job("endless.json")[2])
        self.assertIsNone(self.box.proc.poll())

    def test_bad_input_and_the_allowlist_fail_at_once(self):
        self.start("--allowed-commands", "/bin/*,/usr/bin/env")
        self.box.drop("garbage.json", "{not json")
        self.box.drop("empty.json", "[]")
        self.box.drop("typo.json", {"argv": ["/bin/true"], "max_tme": 3})
        self.box.drop("evil.json", ["/tmp/evil.sh"])
        self.box.drop("fine.json", ["/bin/true"])
        # One argument past the kernel's 128 KB per string: exec says E2BIG, every time.
        self.box.drop("huge.json", ["/bin/echo", "x" * 200000])
        # A file far past ARG_MAX cannot hold a command that starts: not even read.
        arg_max = os.sysconf("SC_ARG_MAX")
        self.box.drop("vast.json", ["/bin/echo"] + ["y" * 1000] * (8 * arg_max // 1000 + 100))
        for name, code in [("garbage.json", "invalid_job"), ("empty.json", "invalid_job"),
                           ("typo.json", "invalid_job"), ("evil.json", "command_not_allowed"),
                           ("huge.json", "command_failed_to_start"),
                           ("vast.json", "unreadable_file")]:
            _, state, attempts, error = self.wait_state(name, "failed")
            self.assertEqual((attempts, error), (1, code), name)
            # The file moves after the failure is committed.
            self.box.wait_for(lambda: name in self.box.listing("failed"), 10, name + " in failed/")
        self.wait_state("fine.json", "succeeded")
        with open(os.path.join(self.box.spool, "failed", "huge.json.error.json")) as f:
            self.assertIn("larger than the kernel takes", json.load(f)["message"])
        with open(os.path.join(self.box.spool, "failed", "vast.json.error.json")) as f:
            self.assertIn("fits the kernel's limit on arguments and environment (%d bytes)"
                          % arg_max, json.load(f)["message"])

    def test_kill_9_while_commands_run(self):
        self.start("--max-workers", "4")
        done = os.path.join(self.box.dir, "done.txt")
        names = ["job%02d.json" % i for i in range(16)]
        for n in names:
            self.box.drop(n, ["/bin/sh", "-c", "sleep 0.4; echo %s >> %s" % (n, done)])
        self.box.wait_for(lambda: list(self.states().values()).count("succeeded") >= 4, 30,
                          "some jobs to finish")
        self.box.stop(signal.SIGKILL)
        succeeded_before = {n for n, s in self.states().items() if s == "succeeded"}
        self.start("--max-workers", "4")
        self.box.wait_for(lambda: set(self.states().values()) == {"succeeded"} and
                          len(self.states()) == 16, 60, "every job to succeed")
        with open(done) as f:
            finished = f.read().split()
        for n in names:
            self.assertGreaterEqual(finished.count(n), 1, n)
        for n in succeeded_before:
            self.assertEqual(finished.count(n), 1, "%s succeeded before the kill, ran again" % n)
        self.box.wait_for(lambda: sorted(self.box.listing("archive")) == names, 10, "the archive")


if __name__ == "__main__":
    harness.main()
