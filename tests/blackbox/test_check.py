"""`sluice check` as Nagios runs it: each exit code on crafted spool states, output that parses
as a plugin line with perfdata, and answers while the daemon is down."""

import os
import re
import subprocess
import time
import unittest

import harness

LINE = re.compile(r"^SLUICE (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+?)(?: \| (.+))?\n$")
PERF = re.compile(r"^([A-Za-z_]+)=(-?[0-9.]+)(s|%|B|KB|MB|c)?;(-?[0-9.]*);(-?[0-9.]*);"
                  r"(-?[0-9.]*)(?:;(-?[0-9.]*))?$")
CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()

    def tearDown(self):
        self.box.close()

    def check(self, *args):
        r = subprocess.run([harness.SLUICE, "check", "--spool-dir", self.box.spool,
                            "--database", "sqlite:" + self.box.db] + list(args),
                           capture_output=True, text=True, timeout=60)
        m = LINE.match(r.stdout)
        self.assertIsNotNone(m, "not a Nagios plugin line: %r" % r.stdout)
        self.assertEqual(r.returncode, CODES[m.group(1)], r.stdout)
        perf = {}
        if m.group(3):
            for item in m.group(3).split(" "):
                p = PERF.match(item)
                self.assertIsNotNone(p, "bad perfdata %r in %r" % (item, r.stdout))
                perf[p.group(1)] = float(p.group(2))
        return m.group(1), m.group(2), perf

    def test_every_state(self):
        self.assertEqual(self.check()[0], "UNKNOWN")  # the daemon never ran: no database
        self.box.start("--kind", "exec")
        def beating():
            try:
                return self.box.query("SELECT COUNT(*) FROM kv WHERE ns='heartbeat'")[0][0] == 1
            except Exception:  # no database or no tables yet
                return False
        self.box.wait_for(beating, 30, "the first heartbeat")
        level, text, perf = self.check()
        self.assertEqual(level, "OK", text)
        self.assertEqual((perf["pending"], perf["failed"], perf["in_progress"]), (0, 0, 0))

        # A command that runs for a while: in progress.
        gate = os.path.join(self.box.dir, "gate")
        self.box.drop("long.json", ["/bin/sh", "-c",
                                    "while [ ! -e %s ]; do sleep 0.05; done" % gate])
        self.box.wait_for(lambda: self.box.query(
            "SELECT COUNT(*) FROM jobs WHERE state='running'")[0][0] == 1, 30, "a running job")
        level, text, perf = self.check("--warn-cur", "1", "--crit-cur", "5")
        self.assertEqual((level, perf["in_progress"], perf["pending"]), ("WARNING", 1, 0), text)
        self.assertEqual(self.check("--warn-cur", "1", "--crit-cur", "1")[0], "CRITICAL")
        open(gate, "w").close()

        # The daemon stops; files pile up: the check still answers from the disk and store.
        self.box.stop()
        for i in range(3):
            self.box.drop("p%d.json" % i, ["/bin/true"])
        level, text, perf = self.check("-w", "2", "-c", "5")
        self.assertEqual((level, perf["pending"]), ("WARNING", 3), text)
        self.assertEqual(self.check("-w", "2", "-c", "3")[0], "CRITICAL")
        old = os.path.join(self.box.spool, "p0.json")
        os.utime(old, (time.time() - 2000, time.time() - 2000))
        level, text, perf = self.check("-t", "900")
        self.assertEqual(level, "WARNING")
        self.assertIn("oldest pending", text)
        self.assertGreaterEqual(perf["oldest_pending"], 2000)
        # A daemon silent for too long.
        time.sleep(1.1)
        level, text, _ = self.check("--heartbeat-age", "1")
        self.assertEqual(level, "CRITICAL")
        self.assertIn("heartbeat", text)
        # Anything failed is critical.
        os.makedirs(os.path.join(self.box.spool, "failed"), exist_ok=True)
        with open(os.path.join(self.box.spool, "failed", "bad.json"), "w") as f:
            f.write("[]")
        level, text, perf = self.check()
        self.assertEqual((level, perf["failed"]), ("CRITICAL", 1), text)
        self.assertIn("1 failed", text)

    def test_unknown_for_a_missing_spool(self):
        r = subprocess.run([harness.SLUICE, "check", "--spool-dir", "/nonexistent/spool"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 3)
        self.assertTrue(r.stdout.startswith("SLUICE UNKNOWN - "), r.stdout)


if __name__ == "__main__":
    harness.main()
