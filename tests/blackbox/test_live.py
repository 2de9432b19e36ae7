"""The daemon as an operator runs it: files landing while it watches, signals, reloading the
trees file, retrying failed files, KernelCI's flags, config files, --no-archive."""

import json
import os
import signal
import sqlite3
import subprocess
import time
import unittest

import harness

V53 = {"major": 5, "minor": 3}


def checkout(cid, url):
    return {"version": V53, "checkouts": [{"id": cid, "origin": "lv", "git_repository_url": url}]}


class LiveTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()

    def tearDown(self):
        self.box.close()

    def archived(self, name):
        return os.path.exists(os.path.join(self.box.spool, "archive", name))

    def test_files_landing_while_it_watches_are_taken_at_once(self):
        box = self.box
        box.start("--interval", "3600")  # inotify only: no rescan will help
        box.wait_for(lambda: os.path.isdir(os.path.join(box.spool, "archive")), what="start")
        t0 = time.time()
        box.drop("renamed-in.json", harness.GOOD)
        with open(os.path.join(box.spool, "written-in-place.json"), "w") as f:
            json.dump(harness.GOOD, f)
        box.wait_for(lambda: self.archived("renamed-in.json") and
                     self.archived("written-in-place.json"), timeout=5, what="both archived")
        self.assertLess(time.time() - t0, 3)
        # Written in place, the file raised IN_CREATE and IN_CLOSE_WRITE: still one job.
        self.assertEqual(box.query("SELECT name, COUNT(*) FROM jobs GROUP BY name"),
                         [("renamed-in.json", 1), ("written-in-place.json", 1)])
        self.assertEqual(box.stop(), 0)

    def test_a_name_used_again_as_soon_as_it_left_is_taken_at_once(self):
        # A producer writing latest.json again the moment the last one left: its rename lands
        # while the old job still holds the name (between the move and the name's release).
        # Each such file used to wait for the next rescan.
        box = self.box
        box.start("--interval", "3600", "--kind", "exec")  # inotify only
        box.wait_for(lambda: os.path.isdir(os.path.join(box.spool, "archive")), what="start")
        path = os.path.join(box.spool, "latest.json")
        slowest = 0
        for i in range(150):
            box.drop("latest.json", ["/bin/true", str(i)])
            t = time.time()
            while os.path.exists(path):  # polled tightly: the next one lands at once
                self.assertLess(time.time() - t, 20, "file %d not taken" % i)
                time.sleep(0.0005)
            slowest = max(slowest, time.time() - t)
        box.wait_for(lambda: box.query("SELECT COUNT(*) FROM jobs WHERE state='succeeded'")[0][0]
                     == 150, timeout=10, what="150 jobs")
        self.assertLess(slowest, 5)  # a busy machine's fsyncs, not a rescan (an hour away)
        self.assertEqual(box.stop(), 0)

    def test_a_file_deleted_and_written_again_while_its_job_ran_is_a_new_job(self):
        # rm x.json; write x.json: the new file often gets the freed inode number (ext4 hands
        # it out again at once), so the inode alone took it for the job's own file, written
        # in place, and archived it unread with the old job.
        box = self.box
        marks = os.path.join(box.dir, "marks")
        box.start("--kind", "exec", "--max-workers", "1")
        box.wait_for(lambda: os.path.isdir(os.path.join(box.spool, "archive")), what="start")
        path = os.path.join(box.spool, "x.json")
        box.drop("x.json", ["/bin/sh", "-c", "echo first >> %s; sleep 1.5" % marks])
        box.wait_for(lambda: os.path.exists(marks), 30, "the first job to start")
        before = os.stat(path).st_ino
        os.unlink(path)
        with open(path, "w") as f:  # written in place, as some producers do
            json.dump(["/bin/sh", "-c", "echo second >> %s" % marks], f)
        same_inode = os.stat(path).st_ino == before
        box.wait_for(lambda: box.query("SELECT state FROM jobs ORDER BY id") ==
                     [("succeeded",), ("succeeded",)], 30, "both jobs")
        with open(marks) as f:
            self.assertEqual(f.read().split(), ["first", "second"], "same inode: %s" % same_inode)
        self.assertIn("another file was put under its name", box.daemon_log())
        self.assertEqual(box.stop(), 0)

    def test_sigterm_finishes_jobs_in_hand_and_loses_nothing(self):
        box = self.box
        box.sluice("demo-data", box.spool, "--count", "3000")
        box.start("--max-workers", "4")
        box.wait_for(lambda: len(box.listing("archive")) > 50, what="some progress")
        self.assertEqual(box.stop(signal.SIGTERM), 0)
        left = [n for n in box.listing() if n.endswith(".json")]
        archived = box.listing("archive")
        self.assertEqual(len(left) + len(archived), 3000)
        self.assertEqual(box.query("SELECT COUNT(*) FROM jobs WHERE state='running'")[0][0], 0)
        # A restart takes the rest.
        r = box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(box.listing("archive")), 3000)

    def test_sighup_reloads_the_trees_file(self):
        box = self.box
        trees = os.path.join(box.dir, "trees.yml")
        with open(trees, "w") as f:
            f.write("trees:\n  first:\n    url: 'https://example.org/a.git'\n")
        box.start("--trees-file", trees)
        box.drop("one.json", checkout("lv:c1", "https://example.org/a.git"))
        box.wait_for(lambda: self.archived("one.json"), what="one.json")
        with open(trees, "w") as f:
            f.write("trees:\n  second:\n    url: 'https://example.org/a.git'\n")
        box.proc.send_signal(signal.SIGHUP)
        box.wait_for(lambda: "configuration reloaded" in box.daemon_log(), what="reload")
        box.drop("two.json", checkout("lv:c2", "https://example.org/a.git"))
        box.wait_for(lambda: self.archived("two.json"), what="two.json")
        names = dict(box.query("SELECT id, tree_name FROM checkouts"))
        self.assertEqual(names, {"lv:c1": "first", "lv:c2": "second"})
        # A broken trees file on reload keeps the old one and the daemon runs on.
        with open(trees, "w") as f:
            f.write("trees: [")
        box.proc.send_signal(signal.SIGHUP)
        box.wait_for(lambda: "reload failed" in box.daemon_log(), what="failed reload")
        self.assertIsNone(box.proc.poll())
        self.assertEqual(box.stop(), 0)

    def test_retry_moves_failed_files_back_and_they_run(self):
        box = self.box
        box.drop("fixme.json", '{"version": {"major": 5, "minor": 3}, "tests": [')
        box.drop("fixme2.json", '{"version": 5}')
        box.drop("toobig.json", harness.GOOD)  # fails for a limit, not for its content
        self.assertEqual(box.burst("--max-file-bytes", "80").returncode, 0)
        self.assertIn("toobig.json.error.json", box.listing("failed"))
        self.assertIn("fixme.json.error.json", box.listing("failed"))
        for name in ("fixme.json", "fixme2.json"):  # the operator repairs them in place
            with open(os.path.join(box.spool, "failed", name), "w") as f:
                json.dump(harness.GOOD, f)
        r = box.sluice("retry", "--spool-dir", box.spool, "fixme.json")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = box.sluice("retry", "--spool-dir", box.spool, "--all-failed",
                       "--database", box.database)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("marked 2 jobs retried", r.stdout)
        self.assertEqual(box.listing("failed"), [])
        # Given the database, the jobs whose files went back leave the failure counts.
        self.assertEqual(box.query("SELECT name FROM jobs WHERE retried_at <> 0 ORDER BY name"),
                         [("fixme2.json",), ("toobig.json",)])
        # As if the daemon had died since: the next start looks every file up in the store.
        con = sqlite3.connect(box.db)
        con.execute("UPDATE kv SET value='0' WHERE ns='engine.clean_stop'")
        con.commit()
        con.close()
        self.assertEqual(box.burst().returncode, 0)
        self.assertTrue(self.archived("fixme.json") and self.archived("fixme2.json"))
        self.assertTrue(self.archived("toobig.json"), box.listing("failed"))
        r = box.sluice("retry", "--spool-dir", box.spool, "nothing.json")
        self.assertNotEqual(r.returncode, 0)

    def test_jobs_and_show_tell_why_a_file_failed(self):
        box = self.box
        box.drop("bad.json", {"version": V53, "tests": [{"id": "x"}]})
        self.assertEqual(box.burst().returncode, 0)
        db = "sqlite:" + box.db
        table = box.sluice("jobs", "--database", db, "--state", "failed").stdout
        self.assertIn("bad.json", table)
        self.assertIn("schema_violation", table)
        shown = json.loads(box.sluice("show", "--database", db, "bad.json").stdout)
        self.assertEqual(shown["error"]["code"], "schema_violation")
        self.assertIn("/tests/0", shown["error"]["detail"]["instance_path"])
        self.assertEqual(json.loads(box.sluice("show", "--database", db,
                                               str(shown["id"])).stdout)["name"], "bad.json")
        self.assertEqual(box.sluice("show", "--database", db, "999").returncode, 3)
        self.assertEqual(box.sluice("jobs", "--database", db, "--state", "odd").returncode, 2)

    def test_monitor_submissions_takes_kernelci_flags(self):
        box = self.box
        box.drop("k.json", harness.GOOD)
        proc = subprocess.Popen(
            [harness.SLUICE, "monitor-submissions", "--spool-dir", box.spool, "--max-workers",
             "2", "--interval", "1", "--trees-file",
             os.path.join(os.path.dirname(__file__), "../../data/kcidb/trees.yml"),
             "--database", "sqlite:" + box.db], stderr=subprocess.PIPE, text=True)
        box.wait_for(lambda: self.archived("k.json"), what="k.json")
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=30), 0)
        r = box.sluice("monitor-submissions", "--spool-dir", box.spool, "--burst")
        self.assertEqual(r.returncode, 2)  # not a KernelCI flag

    def test_a_config_file_sets_flags_and_the_command_line_wins(self):
        box = self.box
        conf = os.path.join(box.dir, "sluice.ini")
        with open(conf, "w") as f:
            f.write("[serve]\nspool-dir = %s\ndatabase = sqlite:%s\nburst = true\n"
                    "no_archive = true\nstderr-level = off\n" % (box.spool, box.db))
        box.drop("c.json", harness.GOOD)
        r = subprocess.run([harness.SLUICE, "serve", "-c", conf], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")  # stderr-level = off from the file
        box.drop("c.json", harness.GOOD)
        r = subprocess.run([harness.SLUICE, "serve", "-c", conf, "--stderr-level", "info"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("draining", r.stderr)  # the command line won
        self.assertIn("1 succeeded", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(box.spool, "c.json")))
        self.assertEqual(box.listing("archive"), [])  # --no-archive deleted it
        with open(conf, "a") as f:
            f.write("max-workers = 0\n")
        r = subprocess.run([harness.SLUICE, "serve", "-c", conf], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2)  # a bad value in the file is refused

    def test_log_file_and_stderr_have_their_own_levels(self):
        box = self.box
        log = os.path.join(box.dir, "sluice.log")
        box.drop("bad.json", "{")
        r = box.burst("--log-file", log, "--log-file-level", "debug", "--stderr-level", "error")
        self.assertEqual(r.returncode, 0)
        self.assertNotIn("warning", r.stderr)
        with open(log) as f:
            self.assertIn("bad.json", f.read())
        r = box.burst("--stderr-level", "loud")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    harness.main()
