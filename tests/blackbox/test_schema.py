"""Schema versions: a database written by the first release of the store layout (version 1,
tests/data/sqlite_v1.db: 7 kcidb jobs, a git task with its items, events, kv) keeps working
with this binary; `sluice migrate` reports and applies; a database newer than the binary is
refused with a message saying so."""

import json
import os
import shutil
import sqlite3
import subprocess
import unittest
import urllib.request

import harness

LATEST = 5  # the schema version this release writes

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sqlite_v1.db")


class SchemaTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        shutil.copy(FIXTURE, self.box.db)

    def tearDown(self):
        self.box.close()

    def test_a_version_1_database_keeps_working(self):
        before = dict(self.box.query("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
        max_job = self.box.query("SELECT MAX(id) FROM jobs")[0][0]
        max_event = self.box.query("SELECT MAX(id) FROM events")[0][0]
        version = self.box.query("PRAGMA user_version")  # 0: from before versions were kept
        r = self.box.sluice("migrate", "--check", "--database", "sqlite:" + self.box.db)
        self.assertEqual(r.returncode, 1, r.stderr)  # 1: migrations are pending
        self.assertIn("schema version 1", r.stdout)
        self.assertIn("pending 2: lease epochs on jobs", r.stdout)  # not applied by --check
        self.assertEqual(self.box.query("PRAGMA user_version"), version)
        r = self.box.sluice("jobs", "--database", "sqlite:" + self.box.db, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)), sum(before.values()))

        # The fixture's jobs ended on 2026-12-01: kept whatever today's date (--job-max-age).
        self.box.start("--archive-path", os.path.join(self.box.dir, "archive"),
                       "--job-max-age", "0")
        port = self.box.wait_for_api()
        self.box.drop("new.json", harness.GOOD)
        self.box.wait_for(lambda: self.box.query(
            "SELECT state FROM jobs WHERE name='new.json'") == [("succeeded",)], 30, "the new job")
        new_id = self.box.query("SELECT id FROM jobs WHERE name='new.json'")[0][0]
        self.assertGreater(new_id, max_job)
        self.assertGreater(self.box.query("SELECT MIN(id) FROM events WHERE job_id=?",
                                          new_id)[0][0], max_event)
        with urllib.request.urlopen("http://127.0.0.1:%d/task/t1" % port) as resp:
            task = json.loads(resp.read())
        self.assertEqual(task["task_id"], "t1")
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/jobs?limit=100" % port) as resp:
            jobs = json.loads(resp.read())
        self.assertEqual(len(jobs["jobs"]), sum(before.values()) + 1)
        self.box.stop()
        self.assertEqual(self.box.query("PRAGMA user_version"), [(LATEST,)])
        self.assertEqual(self.box.query("PRAGMA integrity_check"), [("ok",)])

    def test_a_newer_database_is_refused(self):
        con = sqlite3.connect(self.box.db)
        con.execute("PRAGMA user_version = %d" % (LATEST + 1))
        con.close()
        r = self.box.burst()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("schema version %d, newer than this sluice" % (LATEST + 1), r.stderr)
        r = self.box.sluice("migrate", "--check", "--database", "sqlite:" + self.box.db)
        self.assertEqual(r.returncode, 2)
        r = self.box.sluice("migrate", "--database", "sqlite:" + self.box.db)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(self.box.query("PRAGMA user_version"), [(LATEST + 1,)])

    def test_migrate_makes_a_new_database(self):
        db = os.path.join(self.box.dir, "fresh.db")
        r = self.box.sluice("migrate", "--check", "--database", "sqlite:" + db)
        self.assertEqual(r.returncode, 3)  # nothing there to check
        r = self.box.sluice("migrate", "--database", "sqlite:" + db)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("applied 1:", r.stdout)
        self.assertIn("applied 2:", r.stdout)
        self.assertEqual(self.box.query_db(db, "PRAGMA user_version"), [(LATEST,)])


if __name__ == "__main__":
    harness.main()
