"""sluice migrate-store: a SQLite store with the corpus, a task, its items and the key-value
map moved to PostgreSQL: equal counts and equal rows on both sides; killed midway and run
again, it resumes and copies nothing twice; a target with data of its own is refused unless
--append; the daemon then works on the copy (new ids above the copied ones)."""

import datetime
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import unittest

import harness

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sqlite_v1.db")
SLUICE_TABLES = {
    "jobs": "id", "events": "id", "tasks": "seq", "task_runs": "job_id", "items": "seq",
    "kv": "ns, key"}
KCIDB = ("checkouts", "builds", "tests", "issues", "incidents")


class MigrateStoreTest(unittest.TestCase):
    def setUp(self):
        # The source: the version-1 fixture (a task with items, kv) plus the whole corpus.
        self.src = harness.Sandbox()
        shutil.copy(FIXTURE, self.src.db)
        self.assertTrue(harness.extract_corpus(self.src.spool))
        # The fixture's jobs ended on 2026-12-01: kept whatever today's date (--job-max-age).
        r = self.src.burst("--archive-path", os.path.join(self.src.dir, "archive"),
                           "--job-max-age", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.dst = harness.Sandbox(store="postgresql")

    def tearDown(self):
        self.src.close()
        self.dst.close()

    def migrate(self, *extra):
        return subprocess.run([harness.SLUICE, "migrate-store", "--from", "sqlite:" + self.src.db,
                               "--to", self.dst.database] + list(extra),
                              capture_output=True, text=True, timeout=300)

    def sqlite_rows(self, table, key):
        cols = [r[1] for r in self.src.query("PRAGMA table_info(%s)" % table)]
        return cols, self.src.query("SELECT %s FROM %s ORDER BY %s" % (", ".join(cols), table, key))

    def assert_equal_rows(self):
        for table, key in SLUICE_TABLES.items():
            cols, rows = self.sqlite_rows(table, key)
            where = " WHERE ns <> 'migrate-store'" if table == "kv" else ""
            got = self.dst.query("SELECT %s FROM %s%s ORDER BY %s" % (
                ", ".join(cols), table, where, key.replace("key", "key COLLATE \"C\"")))
            self.assertEqual(len(got), len(rows), table)
            self.assertEqual(got, rows, table)
        for table in KCIDB:
            cols = [r[1] for r in self.src.query("PRAGMA table_info(%s)" % table)]
            src = {}
            for r in self.src.query("SELECT %s FROM %s" % (", ".join(cols), table)):
                row = dict(zip(cols, r))
                src[row["id"]] = row
            dst_cols = ["to_jsonb(%s) AS %s" % (c, c) for c in cols]
            dst = {}
            for r in self.dst.query("SELECT %s FROM public.%s" % (", ".join(dst_cols), table)):
                row = dict(zip(cols, r))
                dst[row["id"]] = row
            self.assertEqual(sorted(src), sorted(dst), table)
            for oid, row in src.items():
                for c, v in row.items():
                    self.assert_same_value(table, oid, c, v, dst[oid][c])

    def assert_same_value(self, table, oid, column, sqlite_value, pg_json):
        where = "%s %s %s" % (table, oid, column)
        if sqlite_value is None:
            self.assertIsNone(pg_json, where)
        elif isinstance(pg_json, bool):
            self.assertEqual(bool(sqlite_value), pg_json, where)
        elif isinstance(pg_json, (dict, list)):
            self.assertEqual(json.loads(sqlite_value), pg_json, where)
        elif isinstance(pg_json, (int, float)):
            self.assertAlmostEqual(float(sqlite_value), float(pg_json), msg=where)
        elif column in ("_timestamp", "start_time") or column.endswith("_finish_time"):
            self.assertEqual(datetime.datetime.fromisoformat(sqlite_value),
                             datetime.datetime.fromisoformat(pg_json), where)
        else:
            self.assertEqual(sqlite_value, pg_json, where)

    def test_everything_moves_and_the_daemon_carries_on(self):
        r = self.migrate()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("every count matches", r.stdout)
        self.assertRegex(r.stdout, r"tests\s+15720\s+15720")
        self.assert_equal_rows()
        # Again: refused (the target holds data), unless it is this copy being resumed.
        again = self.migrate()
        self.assertEqual(again.returncode, 0, again.stderr)  # the same source: a resume
        other = self.src.db + ".copy"
        shutil.copy(self.src.db, other)
        r = subprocess.run([harness.SLUICE, "migrate-store", "--from", "sqlite:" + other, "--to",
                            self.dst.database], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 2)
        self.assertIn("give --append", r.stderr)
        r = subprocess.run([harness.SLUICE, "migrate-store", "--from", "sqlite:" + other, "--to",
                            self.dst.database, "--append"], capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.dst.query("SELECT COUNT(*) FROM jobs")[0][0],
                         self.src.query("SELECT COUNT(*) FROM jobs")[0][0])  # nothing twice
        # The daemon on the copy: the task is there, new jobs and events number on.
        max_job = self.dst.query("SELECT MAX(id) FROM jobs")[0][0]
        max_event = self.dst.query("SELECT MAX(id) FROM events")[0][0]
        self.dst.drop("new.json", harness.GOOD)
        r = self.dst.burst("--job-max-age", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        new = self.dst.query("SELECT id FROM jobs WHERE name = 'new.json'")[0][0]
        self.assertGreater(new, max_job)
        self.assertGreater(self.dst.query("SELECT MIN(id) FROM events WHERE job_id = ?", new)[0][0],
                           max_event)
        self.assertEqual(self.dst.query("SELECT task_id FROM tasks"), [("t1",)])
        self.assertTrue(self.dst.integrity())

    def test_wrong_ends_are_refused_without_echoing_a_password(self):
        server = harness.pg_server()
        host = re.search(r"host=(\S+)", server).group(1)
        port = re.search(r"port=(\d+)", server).group(1)
        url = "postgresql://pgtest:no-echo-4411@/postgres?host=%s&port=%s" % (host, port)
        r = subprocess.run([harness.SLUICE, "migrate-store", "--from", url, "--to", url],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--from must be sqlite:PATH", r.stderr)
        self.assertNotIn("no-echo-4411", r.stdout + r.stderr)
        r = subprocess.run([harness.SLUICE, "migrate-store", "--from",
                            "sqlite:" + os.path.join(self.src.dir, "none.db"), "--to", url],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no SQLite database", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.src.dir, "none.db")))
        self.assertNotIn("no-echo-4411", r.stdout + r.stderr)

    def test_killed_midway_it_resumes_and_copies_nothing_twice(self):
        proc = subprocess.Popen([harness.SLUICE, "migrate-store", "--from",
                                 "sqlite:" + self.src.db, "--to", self.dst.database, "--chunk",
                                 "20"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            if line.startswith("events:"):
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        r = self.migrate()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("resuming the copy", r.stdout)
        self.assertRegex(r.stdout, r"(events|tests): resuming after \d+")
        self.assertIn("every count matches", r.stdout)
        self.assert_equal_rows()


if __name__ == "__main__":
    harness.main()
