"""Folders that move under the daemon: archive/ and failed/ deleted, the whole spool deleted and
created again, folders replaced by symbolic links, a mistyped spool path. Nothing is processed
twice, nothing leaves the spool, and the daemon says what is wrong (log and /readyz)."""

import fcntl
import http.client
import json
import os
import shutil
import subprocess
import time
import unittest

import harness


class HostileFoldersTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.outside = os.path.join(self.box.dir, "outside")
        os.makedirs(self.outside)

    def tearDown(self):
        self.box.close()

    def ready(self):
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        c.request("GET", "/readyz")
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        return r.status, body

    def runs_per_name(self):
        return dict(self.box.query("SELECT name, COUNT(*) FROM jobs GROUP BY name"))

    def test_archive_and_failed_deleted_while_running_are_recreated_and_nothing_runs_twice(self):
        self.box.start()
        self.box.wait_for_api()
        shutil.rmtree(os.path.join(self.box.spool, "archive"))
        shutil.rmtree(os.path.join(self.box.spool, "failed"))
        for i in range(5):
            self.box.drop("ok%d.json" % i, harness.GOOD)
        self.box.drop("bad.json", "{")
        self.box.wait_for(lambda: len(self.box.listing("archive")) == 5 and
                          "bad.json" in self.box.listing("failed"), 30, "the moves")
        time.sleep(2.5)  # two more scans: nothing may be taken again
        self.assertEqual(set(self.runs_per_name().values()), {1}, self.runs_per_name())
        self.assertEqual([n for n in self.box.listing() if n.endswith(".json")], [])
        self.assertEqual(self.ready()[0], 200)

    def test_a_spool_deleted_and_created_again_is_reported_then_watched_again(self):
        self.box.start()
        self.box.wait_for_api()
        shutil.rmtree(self.box.spool)
        self.box.wait_for(lambda: self.ready()[0] == 503, 10, "/readyz to say 503")
        self.assertIn("missing", self.ready()[1]["error"]["message"])
        time.sleep(1.5)
        os.makedirs(self.box.spool)
        self.box.wait_for(lambda: self.ready()[0] == 200, 10, "/readyz to recover")
        self.box.drop("again.json", harness.GOOD)
        self.box.wait_for(lambda: self.box.listing("archive") == ["again.json"], 10,
                          "the file dropped in the new spool")
        self.assertEqual(self.box.daemon_log().count("cannot be used"), 1, self.box.daemon_log())

    def test_a_folder_replaced_by_a_symlink_is_refused_and_nothing_leaves_the_spool(self):
        self.box.start()
        self.box.wait_for_api()
        failed = os.path.join(self.box.spool, "failed")
        os.rename(failed, os.path.join(self.box.dir, "failed.moved"))
        os.symlink(self.outside, failed)
        self.box.wait_for(lambda: self.ready()[0] == 503, 10, "/readyz to say 503")
        self.assertIn("symbolic link", self.ready()[1]["error"]["message"])
        self.box.drop("evil.json", "{")
        time.sleep(1.5)
        self.assertEqual(os.listdir(self.outside), [])
        # Fixed by the operator: the file goes where it belongs. (The daemon may make the
        # missing folder itself first, as it does for a deleted one.)
        os.remove(failed)
        os.makedirs(failed, exist_ok=True)
        self.box.wait_for(lambda: "evil.json" in self.box.listing("failed"), 15, "the move")
        self.assertEqual(os.listdir(self.outside), [])
        self.assertEqual(self.ready()[0], 200)

    def test_a_linked_folder_or_a_missing_spool_refuses_to_start_naming_the_problem(self):
        os.symlink(self.outside, os.path.join(self.box.spool, "archive"))
        r = self.box.burst()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("symbolic link", r.stderr)
        typo = os.path.join(self.box.dir, "nonexistent", "spool")
        r = subprocess.run([harness.SLUICE, "serve", "--spool-dir", typo, "--no-api", "--burst",
                            "--database", "sqlite:" + self.box.db], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(os.path.join(self.box.dir, "nonexistent") + " is missing", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.box.dir, "nonexistent")))

    def test_a_second_daemon_on_the_same_spool_or_database_refuses_to_start(self):
        # Two daemons on one SQLite file took each other's running jobs for a crash's
        # leftovers (jobs archived but left "queued"); two on one spool ran its files twice.
        box = self.box
        box.start()
        box.wait_for_api()
        other_spool = os.path.join(box.dir, "other-spool")
        os.makedirs(other_spool)
        cases = [
            (["--spool-dir", other_spool, "--database", box.database],
             "another daemon uses the database " + box.db),
            (["--spool-dir", box.spool, "--database", "sqlite:" + os.path.join(box.dir, "b.db")],
             "another daemon runs the spool " + box.spool),
            # The same folder by another path.
            (["--spool-dir", os.path.join(box.spool, "failed", ".."),
              "--database", "sqlite:" + os.path.join(box.dir, "c.db")],
             "another daemon runs the spool"),
        ]
        for args, message in cases:
            r = subprocess.run([harness.SLUICE, "serve", "--no-api", "--burst"] + args,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(message, r.stderr)
        # Nor may one daemon be given a folder twice.
        conf = os.path.join(box.dir, "twice.toml")
        with open(conf, "w") as f:
            f.write('database = "sqlite:%s"\nno_api = true\n[spool.a]\ndir = "%s"\n'
                    '[spool.b]\ndir = "%s/"\nkind = "exec"\n' % (
                        os.path.join(box.dir, "d.db"), other_spool, other_spool))
        r = subprocess.run([harness.SLUICE, "serve", "-c", conf, "--burst"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("are one folder", r.stderr)
        box.drop("a.json", harness.GOOD)
        box.wait_for(lambda: self.runs_per_name() == {"a.json": 1}, 30, "the first daemon's job")
        self.assertEqual(box.stop(), 0)
        # Once it has stopped, another may take the spool.
        r = box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_spool_created_again_is_run_by_one_daemon_only(self):
        # The lock taken at start is on the folder that was deleted: the new one is locked when
        # the daemon takes it, and left alone while another daemon holds it.
        box = self.box
        box.start()
        box.wait_for_api()
        shutil.rmtree(box.spool)
        box.wait_for(lambda: self.ready()[0] == 503, 10, "/readyz to say 503")
        fresh = os.path.join(box.dir, "fresh")
        os.makedirs(fresh)
        holder = os.open(fresh, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another daemon on it would
        os.rename(fresh, box.spool)
        box.wait_for(lambda: "another daemon runs it now" in self.ready()[1].get(
            "error", {}).get("message", ""), 10, "/readyz to name the other daemon")
        box.drop("held.json", harness.GOOD)
        time.sleep(1.5)
        self.assertEqual(self.runs_per_name(), {})
        self.assertIn("held.json", box.listing())
        os.close(holder)  # the other daemon stops: this one takes the spool
        box.wait_for(lambda: box.listing("archive") == ["held.json"], 15, "the file's job")
        # Now it holds the new folder: a second daemon is refused it.
        r = subprocess.run([harness.SLUICE, "serve", "--no-api", "--burst", "--spool-dir",
                            box.spool, "--database",
                            "sqlite:" + os.path.join(box.dir, "b.db")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("another daemon runs the spool", r.stderr)
        self.assertEqual(self.runs_per_name(), {"held.json": 1})

    def test_a_queuedir_folder_replaced_by_a_symlink_takes_no_item_through_it(self):
        q = os.path.join(self.box.dir, "q")
        for sub in ("tmp", "new", "cur", "logs"):
            os.makedirs(os.path.join(q, sub))
        os.symlink(self.outside, os.path.join(q, "dead"))
        r = subprocess.run([harness.SLUICE, "command-runner", q], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("symbolic link", r.stderr)
        self.assertEqual(os.listdir(self.outside), [])


if __name__ == "__main__":
    harness.main()
