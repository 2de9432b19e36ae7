"""PostgreSQL as the store, driven as an operator would: the server restarted (crash and
recovery) twice during a corpus drain; stopped for a while (/readyz 503, one log line for the
outage and one when it is back); two daemons on one database with one SSE reader; a database
that cannot be reached at start; passwords kept out of logs, errors and the process list."""

import http.client
import json
import os
import re
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness
import psycopg2

def small_doc(tag):
    return {"version": {"major": 5, "minor": 3}, "tests": [
        {"id": "ro:" + tag, "origin": "ro", "build_id": "ro:b", "status": "PASS"}]}


COUNTS = {"checkouts": 32, "builds": 103, "tests": 15720, "issues": 4, "incidents": 3}


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class RestartTest(unittest.TestCase):
    """On a server of the test's own, which it crashes and stops."""

    def setUp(self):
        self.pg = harness.PgServer()
        self.box = harness.Sandbox(api=True, database=self.pg.database())

    def tearDown(self):
        self.box.close()
        self.pg.close()

    def archived(self):
        return len(self.box.listing("archive"))

    def assert_each_file_once(self, names):
        """Every corpus file archived, none failed, each succeeded once, every row stored."""
        self.assertEqual(self.box.listing("archive"), names)  # each exactly once
        self.assertEqual(self.box.listing("failed"), [])
        done = self.box.query("SELECT name, COUNT(*) FROM jobs WHERE state = 'succeeded' "
                              "GROUP BY name")
        self.assertEqual(len(done), len(names))
        self.assertTrue(all(n == 1 for _, n in done), "a file completed twice")
        counts = {t: self.box.query("SELECT COUNT(*) FROM " + t)[0][0] for t in COUNTS}
        self.assertEqual(counts, COUNTS)

    def test_two_immediate_restarts_during_a_corpus_drain(self):
        for i in range(2):
            self.assertTrue(harness.extract_corpus(self.box.spool, prefix="r%d-" % i))
        names = sorted(n for n in os.listdir(self.box.spool) if n.endswith(".json"))
        self.box.start("--max-workers", "4")
        self.box.wait_for_api()
        for at in (150, 500):
            self.box.wait_for(lambda: self.archived() >= at, 120, "%d files archived" % at)
            self.pg.restart()
        self.box.wait_for(lambda: self.archived() == len(names), 300, "every file archived")
        self.assertIsNone(self.box.proc.poll(), "the daemon stayed up")
        self.assert_each_file_once(names)
        self.assertTrue(self.box.integrity())
        # Each outage seen is said once, and so is its end (which may come a moment later).
        self.box.wait_for(lambda: self.box.daemon_log().count("is unreachable") ==
                          self.box.daemon_log().count("is back after"), 30, "every outage's end")
        log = self.box.daemon_log()
        self.assertGreaterEqual(log.count("is unreachable"), 1, log[-3000:])
        self.assertLessEqual(log.count("is unreachable"), 2, log[-3000:])
        # Events: ids strictly increasing, one state event per state change.
        ids = [r[0] for r in self.box.query("SELECT id FROM events ORDER BY id")]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(self.box.stop(), 0)

    def test_an_outage_answers_503_and_logs_one_line_each_way(self):
        self.box.start()
        port = self.box.wait_for_api()
        self.assertEqual(get(port, "/readyz")[0], 200)
        self.pg.stop()
        self.box.drop("during.json", harness.GOOD)
        self.box.wait_for(lambda: get(port, "/readyz")[0] == 503, 30, "/readyz to say 503")
        code, body = get(port, "/readyz")
        self.assertEqual(code, 503)
        self.assertIn("error", json.dumps(body))
        self.assertEqual(get(port, "/healthz")[0], 200)  # alive, not ready
        time.sleep(3)  # retries meanwhile: still one line
        self.pg.start()
        self.box.wait_for(lambda: get(port, "/readyz")[0] == 200, 60, "/readyz back to 200")
        self.box.wait_for(lambda: "during.json" in self.box.listing("archive"), 60,
                          "the file dropped during the outage")
        log = self.box.daemon_log()
        self.assertEqual(log.count("is unreachable"), 1, log[-3000:])
        self.assertEqual(log.count("is back after"), 1, log[-3000:])
        self.assertNotIn("store write failed", log)
        self.assertEqual(self.box.stop(), 0)


    def test_a_stop_during_an_outage_gives_up_after_a_grace_and_the_next_start_does_the_rest(self):
        self.assertTrue(harness.extract_corpus(self.box.spool))
        names = sorted(n for n in os.listdir(self.box.spool) if n.endswith(".json"))
        self.box.start("--max-workers", "4")
        port = self.box.wait_for_api()
        self.box.wait_for(lambda: self.archived() >= 50, 120, "50 files archived")
        self.pg.stop()
        # The workers' rows back up behind the writer; a submission is refused at once.
        self.box.wait_for(lambda: get(port, "/readyz")[0] == 503, 30, "/readyz to say 503")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t0 = time.time()
        c.request("POST", "/api/v1/jobs", json.dumps({"kind": "kcidb", "payload": harness.GOOD}))
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        self.assertEqual(r.status, 503, body)
        self.assertLess(time.time() - t0, 5)
        self.assertIn("store", body["error"]["message"])
        self.assertEqual(r.getheader("Retry-After"), "1")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as m:
            self.assertIn('sluice_store_write_failing{spool="%s"} 1' % self.box.spool,
                          m.read().decode())
        time.sleep(2)
        t0 = time.time()
        code = self.box.stop(timeout=90)  # SIGTERM: once hung for as long as the outage lasted
        took = time.time() - t0
        self.assertEqual(code, 1, self.box.daemon_log()[-2000:])
        self.assertLess(took, 45)
        self.assertIn("given up; what was not committed is taken again", self.box.daemon_log())
        self.pg.start()
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assert_each_file_once(names)


class SharedDatabaseTest(unittest.TestCase):
    def setUp(self):
        self.database = harness.pg_database("shared")
        self.a = harness.Sandbox(api=True, database=self.database)
        self.b = harness.Sandbox(api=True, database=self.database)

    def tearDown(self):
        self.a.close()
        self.b.close()

    def test_two_daemons_one_database_one_event_stream(self):
        self.a.start("--max-workers", "3")
        port = self.a.wait_for_api()
        self.b.start("--max-workers", "3")
        self.b.wait_for_api()
        reader = harness.SseClient(port, "/api/v1/events")
        per_daemon = 150
        frames = []
        collect = threading.Thread(target=lambda: frames.extend(
            reader.frames(lambda got: sum(1 for f in got if isinstance(f.get("data"), dict) and
                                          f["data"].get("state") == "succeeded")
                          >= 2 * per_daemon, timeout=180)))
        collect.start()

        def feed(box, tag):
            for i in range(per_daemon):
                doc = {"version": {"major": 5, "minor": 3}, "tests": [
                    {"id": "sh:%s%d" % (tag, i), "origin": "sh", "build_id": "sh:b",
                     "status": "PASS"}]}
                box.drop("%s-%03d.json" % (tag, i), doc)
        feeders = [threading.Thread(target=feed, args=(box, tag))
                   for box, tag in ((self.a, "a"), (self.b, "b"))]
        for t in feeders:
            t.start()
        for t in feeders:
            t.join()
        for box in (self.a, self.b):
            box.wait_for(lambda box=box: len(box.listing("archive")) == per_daemon, 120,
                         "both spools drained")
        collect.join()
        reader.close()
        jobs = self.a.query("SELECT id, spool FROM jobs")
        self.assertEqual(len(jobs), 2 * per_daemon)
        self.assertEqual(len({j for j, _ in jobs}), 2 * per_daemon)  # ids never collide
        self.assertEqual({s for _, s in jobs}, {self.a.spool, self.b.spool})
        seen = [int(f["id"]) for f in frames if "id" in f]
        self.assertEqual(seen, sorted(seen))  # in id order
        self.assertEqual(len(seen), len(set(seen)))  # none twice
        stored = [r[0] for r in self.a.query("SELECT id FROM events WHERE id <= %d ORDER BY id"
                                             % seen[-1])]
        self.assertEqual(seen, stored)  # none missing, both daemons' events
        self.assertEqual(self.a.query("SELECT COUNT(*) FROM tests")[0][0], 2 * per_daemon)
        self.assertEqual(self.a.stop(), 0)
        self.assertEqual(self.b.stop(), 0)

    def test_filters_and_ids_that_are_not_text_are_refused_as_on_sqlite(self):
        # PostgreSQL cannot hold them (its answer was a 400 quoting SQL, or a stream that
        # ended at once), and its client cuts a value at a NUL (name=a%00b matched 'a').
        self.a.start()
        port = self.a.wait_for_api()

        def get(path):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.putrequest("GET", path, skip_accept_encoding=True)
            c.endheaders()
            r = c.getresponse()
            body = json.loads(r.read().decode("utf-8"))
            c.close()
            return r.status, body
        for path in ("/api/v1/jobs?name=%ff", "/api/v1/jobs?queue=a%00b",
                     "/api/v1/jobs?kind=%c3%28", "/api/v1/events?queue=%ff&after=0",
                     "/api/v1/failures?queue=%00"):
            status, body = get(path)
            self.assertEqual(status, 400, (path, body))
            self.assertIn("UTF-8 text without NUL", body["error"]["message"])
            self.assertNotIn("SELECT", body["error"]["message"])
        for path in ("/task/%ff", "/task/a%00b", "/job/%fe"):
            status, body = get(path)
            self.assertEqual((status, body["error"]["code"]), (404, "not_found"), path)
        self.assertEqual(get("/api/v1/jobs?name=fine.json")[0], 200)

    def test_an_event_stream_resumes_on_another_daemon_with_no_gap(self):
        self.a.start()
        a_port = self.a.wait_for_api()
        self.b.start()
        b_port = self.b.wait_for_api()

        def feed(box, tag, n):
            for i in range(n):
                box.drop("%s-%03d.json" % (tag, i), {"version": {"major": 5, "minor": 3},
                                                      "tests": [{"id": "rs:%s%d" % (tag, i),
                                                                 "origin": "rs",
                                                                 "build_id": "rs:b",
                                                                 "status": "PASS"}]})
        feed(self.a, "a", 40)
        feed(self.b, "b", 40)
        for box in (self.a, self.b):
            box.wait_for(lambda box=box: len(box.listing("archive")) == 40, 60, "a first drain")
        first = harness.SseClient(a_port, "/api/v1/events", last_event_id="0")
        got = first.frames(lambda f: len(f) >= 100, timeout=30)
        first.close()
        last = got[-1]["id"]
        # More events from both daemons, then the stream picks up on the other daemon.
        feed(self.a, "c", 20)
        feed(self.b, "d", 20)
        for box in (self.a, self.b):
            box.wait_for(lambda box=box: len(box.listing("archive")) == 60, 60, "more files")
        total = self.a.query("SELECT COUNT(*) FROM events")[0][0]
        second = harness.SseClient(b_port, "/api/v1/events", last_event_id=last)
        rest = second.frames(lambda f: len(f) >= total - 100, timeout=30)
        second.close()
        ids = [int(f["id"]) for f in got + rest]
        stored = [r[0] for r in self.a.query("SELECT id FROM events ORDER BY id")]
        self.assertEqual(ids, stored)  # every event of both daemons once, in order
        self.assertEqual(self.a.stop(), 0)
        self.assertEqual(self.b.stop(), 0)


DASHBOARD_SQL = os.path.join(harness.KCIDB, "dashboard_schema.sql")


class DashboardLayoutTest(unittest.TestCase):
    """Into tables the dashboard's own migrations made: written as they are."""

    def setUp(self):
        self.box = harness.Sandbox(store="postgresql")
        with open(DASHBOARD_SQL) as f:
            self.box.query(f.read())

    def tearDown(self):
        self.box.close()

    def columns(self):
        return self.box.query(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable,"
            " column_default, is_generated, generation_expression FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY 1, 2")

    def test_the_corpus_into_the_dashboards_tables(self):
        before = self.columns()
        self.assertTrue(harness.extract_corpus(self.box.spool))
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("500 succeeded, 0 failed", r.stdout)
        self.assertEqual(self.columns(), before)  # nothing altered
        tables = {t for (t,) in self.box.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        self.assertEqual(tables, set(COUNTS))  # Sluice's own tables live elsewhere
        counts = {t: self.box.query("SELECT COUNT(*) FROM public." + t)[0][0] for t in COUNTS}
        self.assertEqual(counts, COUNTS)
        statuses = dict(self.box.query(
            "SELECT id, status FROM builds WHERE id IN ('redhat:1932158365-aarch64-kernel-16k',"
            " 'redhat:1932158469-x86_64-kernel-debug', 'redhat:1932158470-x86_64-kernel-debug',"
            " 'redhat:1932158353-aarch64-kernel')"))  # the 4 v4.2 builds with valid: true
        self.assertEqual(set(statuses.values()), {"PASS"})
        self.assertEqual(len(statuses), 4)
        named = {n for (n,) in self.box.query(
            "SELECT tree_name FROM checkouts WHERE git_repository_url ="
            " 'https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git'")}
        self.assertEqual(named, {"mainline"})
        # Values with their types: timestamps, JSON objects, arrays, booleans.
        ts, misc = self.box.query("SELECT start_time, misc FROM tests WHERE misc IS NOT NULL"
                                  " AND start_time IS NOT NULL LIMIT 1")[0]
        self.assertIsNotNone(ts.tzinfo)
        self.assertIsInstance(misc, dict)
        self.assertEqual(self.box.query("SELECT COUNT(*) FROM builds WHERE _timestamp IS NULL")[0][0], 0)
        self.assertEqual(self.box.query(
            "SELECT COUNT(*) FROM builds WHERE series IS NULL")[0][0], 0)  # generated, untouched
        self.assertTrue(self.box.integrity())

    def test_control_characters_in_json_fields_are_stored(self):
        # A test's misc holding a colored log line (ESC, 0x1b) and the other control
        # characters, past a string's first 16 bytes: JSON for the jsonb column (once refused
        # by PostgreSQL, the file failed as store_rejected).
        controls = "".join(chr(c) for c in range(1, 32))
        misc = {"log_line": "y" * 21 + " \x1b[31mfail\x1b[0m " + controls}
        self.box.drop("esc.json", {"version": {"major": 5, "minor": 3}, "tests": [
            {"id": "esc:t", "origin": "esc", "build_id": "esc:b", "status": "FAIL",
             "comment": "x" * 20 + "\x1b[31mred\x1b[0m", "misc": misc}]})
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.box.listing("archive"), ["esc.json"], self.box.listing("failed"))
        stored, comment = self.box.query("SELECT misc, comment FROM tests WHERE id = 'esc:t'")[0]
        self.assertEqual(stored["log_line"], misc["log_line"])
        self.assertEqual(comment, "x" * 20 + "\x1b[31mred\x1b[0m")

    def test_a_table_without_a_unique_id_stops_the_start(self):
        self.box.query("ALTER TABLE tests DROP CONSTRAINT tests_pkey")
        r = self.box.burst()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("table tests has no unique key on \"id\"", r.stderr)

    def test_a_value_the_column_cannot_hold_fails_its_file_alone(self):
        self.box.query("ALTER TABLE tests ALTER COLUMN path TYPE varchar(30)")
        v = {"major": 5, "minor": 3}
        self.box.drop("good.json", {"version": v, "tests": [
            {"id": "lim:good", "origin": "lim", "build_id": "lim:b", "path": "short.path"}]})
        self.box.drop("long.json", {"version": v, "tests": [
            {"id": "lim:long", "origin": "lim", "build_id": "lim:b",
             "path": "a.very.long.test.path.that.does.not.fit"}]})
        self.box.drop("zone.json", {"version": v, "tests": [
            {"id": "lim:zone", "origin": "lim", "build_id": "lim:b",
             "start_time": "2020-01-01T00:00:00+16:00"}]})
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(self.box.listing("archive")), ["good.json"])
        errors = {}
        for name in ("long.json", "zone.json"):
            with open(os.path.join(self.box.spool, "failed", name + ".error.json")) as f:
                errors[name] = json.load(f)
        long_msg = errors["long.json"]["message"]
        self.assertIn("tests 'lim:long'", long_msg)
        self.assertIn("path is 39 characters long, over the column's limit of 30", long_msg)
        zone_msg = errors["zone.json"]["message"]
        self.assertIn("tests 'lim:zone', field start_time", zone_msg)
        self.assertIn("time zone displacement out of range", zone_msg)
        self.assertEqual([i for (i,) in self.box.query("SELECT id FROM tests")], ["lim:good"])
        self.assertEqual(self.columns()[0][0], "builds")  # still the dashboard's tables


class ReadOnlyTest(unittest.TestCase):
    """A database that takes no writes for a while (read-only, as a standby in a failover):
    files wait, none fails, all go through when it takes writes again."""

    def setUp(self):
        self.box = harness.Sandbox(store="postgresql")
        self.dbname = re.search(r"dbname=(\S+)", self.box.database).group(1)
        self.admin = harness.pg_connect(harness.pg_server() + " dbname=postgres")

    def tearDown(self):
        self.admin.close()
        self.box.close()

    def read_only(self, on):
        cur = self.admin.cursor()
        cur.execute("ALTER DATABASE %s SET default_transaction_read_only = %s"
                    % (self.dbname, "on" if on else "off"))
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                    " AND pid <> pg_backend_pid()", (self.dbname,))

    def test_files_wait_while_the_database_takes_no_writes(self):
        self.box.start()
        self.box.wait_for(lambda: "watching 1 spool" in self.box.daemon_log(), 30, "the start")
        for i in range(10):
            self.box.drop("before-%d.json" % i, small_doc("b%d" % i))
        self.box.wait_for(lambda: len(self.box.listing("archive")) == 10, 30, "the first files")
        self.read_only(True)
        for i in range(20):
            self.box.drop("during-%d.json" % i, small_doc("d%d" % i))
        time.sleep(3)
        self.assertEqual(self.box.listing("failed"), [])
        self.read_only(False)
        self.box.wait_for(lambda: len(self.box.listing("archive")) == 30, 60, "every file")
        self.assertEqual(self.box.listing("failed"), [])
        self.assertEqual(self.box.query("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'"),
                         [(30,)])
        self.assertEqual(self.box.stop(), 0)


class ConnectionTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()

    def tearDown(self):
        self.box.close()

    def test_an_unreachable_database_is_a_clear_error_at_start(self):
        port = harness.free_port()
        started = time.time()
        r = subprocess.run([harness.SLUICE, "serve", "--spool-dir", self.box.spool, "--no-api",
                            "--database", "postgresql://someone@127.0.0.1:%d/ingest" % port],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertLess(time.time() - started, 30)
        self.assertIn("host 127.0.0.1 port %d database ingest user someone" % port, r.stderr)

    def test_reading_commands_never_create_a_schema(self):
        db = harness.pg_database("typo")
        r = subprocess.run([harness.SLUICE, "jobs", "--database", db, "--pg-schema", "slucie"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('no Sluice tables in postgresql', r.stderr)
        self.assertIn("schema slucie", r.stderr)
        with psycopg2.connect(db) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'slucie'")
            self.assertEqual(cur.fetchone()[0], 0)

    def test_passwords_stay_out_of_logs_errors_and_ps(self):
        server = harness.pg_server()
        host = re.search(r"host=(\S+)", server).group(1)
        port = int(re.search(r"port=(\d+)", server).group(1))
        # The test server asks TCP clients for a password (role sluice_pw, pw-secret-77).
        wrong = "postgresql://sluice_pw:Wr0ng-Secret-5@127.0.0.1:%d/postgres" % port
        r = subprocess.run([harness.SLUICE, "serve", "--spool-dir", self.box.spool, "--no-api",
                            "--database", wrong], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("password authentication failed", r.stderr)
        self.assertNotIn("Wr0ng-Secret-5", r.stderr + r.stdout)
        # The right one from PGPASSWORD: works, and the URL shown has none.
        db = harness.pg_database("pw")
        dbname = re.search(r"dbname=(\S+)", db).group(1)
        url = "postgresql://sluice_pw@127.0.0.1:%d/%s" % (port, dbname)
        env = dict(os.environ, PGPASSWORD="pw-secret-77")
        self.box.drop("a.json", harness.GOOD)
        r = subprocess.run([harness.SLUICE, "serve", "--spool-dir", self.box.spool, "--no-api",
                            "--burst", "--settle", "0", "--database", url], capture_output=True,
                           text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 succeeded", r.stdout)
        self.assertNotIn("pw-secret-77", r.stderr + r.stdout)
        # In the URL itself: ps shows it blanked.
        secret_url = "postgresql://sluice_pw:pw-secret-77@127.0.0.1:%d/%s" % (port, dbname)
        box = harness.Sandbox(api=True, database=secret_url)
        try:
            box.start()
            box.wait_for_api()
            with open("/proc/%d/cmdline" % box.proc.pid, "rb") as f:
                self.assertNotIn(b"pw-secret-77", f.read())
            code, metrics = None, None
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % box.port) as resp:
                metrics = resp.read().decode()
            self.assertNotIn("pw-secret-77", metrics)
            box.stop()
            self.assertNotIn("pw-secret-77", box.daemon_log())
        finally:
            box.close()
        del host


if __name__ == "__main__":
    harness.main()
