"""kill -9 at random moments, many times during one run over the real corpus (four copies
under different names, 2,000 files), then finish: every file archived exactly once, no job
run to completion twice, object counts exact, the database consistent."""

import os
import random
import signal
import time
import unittest

import harness

COPIES = 4
MIN_KILLS = 12


class CrashTest(unittest.TestCase):
    STORE = "sqlite"

    def setUp(self):
        self.box = harness.Sandbox(store=self.STORE)
        self.expected = None
        for i in range(COPIES):
            if not harness.extract_corpus(self.box.spool, prefix="c%d-" % i):
                break
        else:
            self.expected = {"checkouts": 32, "builds": 103, "tests": 15720, "issues": 4,
                             "incidents": 3}
        if self.expected is None:  # no shared corpus: the project's own demo data
            r = self.box.sluice("demo-data", self.box.spool, "--count", "2000",
                                "--bad-fraction", "0")
            self.assertEqual(r.returncode, 0, r.stderr)
        self.names = sorted(n for n in os.listdir(self.box.spool) if n.endswith(".json"))

    def tearDown(self):
        self.box.close()

    def pending(self):
        return [n for n in os.listdir(self.box.spool) if n.endswith(".json")]

    def test_kill_9_at_random_moments_loses_nothing_and_repeats_nothing(self):
        rng = random.Random(int(os.environ.get("SLUICE_CRASH_SEED", time.time())))
        kills = 0
        while kills < MIN_KILLS and self.pending():
            proc = self.box.start("--max-workers", "5")
            # Short lives: each start costs a recovery and a scan, so all the kills fall while
            # files remain, however fast the machine drains.
            time.sleep(rng.uniform(0.03, 0.2))
            if proc.poll() is not None:
                self.fail("daemon died by itself:\n" + self.box.daemon_log()[-3000:])
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        print("killed %d times; %d files were still waiting" % (kills, len(self.pending())))
        self.assertGreaterEqual(kills, 10, "the run finished before enough kills")

        r = self.box.burst("--max-workers", "5")
        self.assertEqual(r.returncode, 0, r.stderr + self.box.daemon_log()[-2000:])

        self.assertEqual(self.pending(), [])
        self.assertEqual(self.box.listing("failed"), [])
        self.assertEqual(self.box.listing("archive"), self.names)  # each exactly once
        done = self.box.query(
            "SELECT name, COUNT(*) FROM jobs WHERE state='succeeded' GROUP BY name")
        self.assertEqual(len(done), len(self.names))
        self.assertTrue(all(n == 1 for _, n in done), "a file completed twice")
        self.assertEqual(self.box.query(
            "SELECT COUNT(*) FROM jobs WHERE state NOT IN ('succeeded')")[0][0], 0)
        if self.expected:
            counts = {t: self.box.query("SELECT COUNT(*) FROM " + t)[0][0]
                      for t in self.expected}
            self.assertEqual(counts, self.expected)
        self.assertTrue(self.box.integrity())


class CrashPostgresTest(CrashTest):
    STORE = "postgresql"


if __name__ == "__main__":
    harness.main()
