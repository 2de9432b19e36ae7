"""Hostile input over every entry point: documents nested a hundred thousand levels deep, times
past the representable range, bytes that are not UTF-8, names that cannot be file names. The
daemon answers 4xx with a JSON error (or fails the job with a reason), stays up, and every
response body is valid UTF-8 JSON."""

import http.client
import json
import os
import signal
import subprocess
import time
import unittest

import harness

DEEP = "[" * 100000 + "]" * 100000
DEEP_OBJ = '{"a":' * 50000 + "1" + "}" * 50000


def config(box, text):
    path = os.path.join(box.dir, "sluice.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


class HostileApiTest(unittest.TestCase):
    """One daemon with an exec spool (for jobs over HTTP) and the task API."""

    @classmethod
    def setUpClass(cls):
        cls.box = harness.Sandbox(api=True)
        cls.box.start("--kind", "exec", "--archive-path", os.path.join(cls.box.dir, "archive"))
        cls.port = cls.box.wait_for_api()

    @classmethod
    def tearDownClass(cls):
        cls.box.close()

    def request(self, method, path, body=None, raw_path=False):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if raw_path:
            c.putrequest(method, path, skip_accept_encoding=True)
            c.endheaders()
        else:
            c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        c.close()
        # Every body is valid UTF-8 JSON, whatever went in.
        text = data.decode("utf-8")  # raises on a byte that is not UTF-8
        return r.status, json.loads(text) if text else None

    def assertAlive(self):
        self.assertEqual(self.request("GET", "/healthz")[0], 200)
        self.assertIsNone(self.box.proc.poll())

    def test_deep_nesting_is_a_400_on_every_route_that_reads_json(self):
        routes = ["/api/v1/jobs", "/add", "/remove", "/reschedule", "/api/v1/priority",
                  "/api/v1/promote"]
        for body in (DEEP, DEEP_OBJ):
            for route in routes:
                status, answer = self.request("POST", route, body=body)
                self.assertEqual(status, 400, (route, answer))
                self.assertIn("deeper than", answer["error"]["message"], route)
        # Inside an otherwise good request too.
        status, answer = self.request("POST", "/api/v1/jobs", json.dumps(
            {"kind": "exec", "payload": "x"})[:-1] + ', "payload2": ' + DEEP + "}")
        self.assertEqual(status, 400, answer)
        status, answer = self.request(
            "POST", "/add", '{"tasks": [{"task_id": "t", "backend": "git", "category": '
            '"commit", "backend_args": {"uri": "x", "nested": ' + DEEP + "}}]}")
        self.assertEqual(status, 400, answer)
        self.assertAlive()

    def test_a_payload_just_within_the_limit_is_taken(self):
        payload = "[" * 200 + "]" * 200
        status, job = self.request("POST", "/api/v1/jobs", json.dumps(
            {"kind": "exec", "payload": json.loads(payload)}))
        self.assertEqual(status, 201, job)
        self.box.wait_for(lambda: self.request("GET", "/api/v1/jobs/%d" % job["id"])[1]["state"]
                          == "failed", what="the job to fail")
        self.assertEqual(self.request("GET", "/api/v1/jobs/%d" % job["id"])[1]["error"]["code"],
                         "invalid_job")

    def test_times_and_durations_out_of_range_are_422_naming_the_field(self):
        for run_at in ("9999-12-31T23:59:59Z", "2263-01-01T00:00:00Z", "1969-12-31T23:59:59Z"):
            status, answer = self.request("POST", "/api/v1/jobs", json.dumps(
                {"kind": "exec", "payload": ["/bin/true"], "run_at": run_at}))
            self.assertEqual(status, 422, answer)
            self.assertIn("run_at", answer["error"]["message"])
            self.assertIn("2200-01-01", answer["error"]["message"])
        for delay in (2 ** 63 - 1, 2 ** 62, 10 ** 12):
            status, answer = self.request("POST", "/add", json.dumps({"tasks": [{
                "task_id": "d%d" % delay, "backend": "git", "category": "commit",
                "backend_args": {"uri": "/nonexistent"}, "scheduler": {"delay": delay}}]}))
            self.assertEqual(status, 422, answer)
            self.assertIn("scheduler.delay", answer["error"]["message"])
        status, answer = self.request("POST", "/add", json.dumps({"tasks": [{
            "task_id": "far", "backend": "git", "category": "commit",
            "backend_args": {"uri": "/nonexistent", "from_date": "9999-01-01"}}]}))
        self.assertEqual(status, 422, answer)
        self.assertIn("from_date", answer["error"]["message"])
        self.assertEqual(self.request("GET", "/tasks")[1]["tasks"], [])
        self.assertAlive()

    def test_bytes_that_are_not_utf8_never_come_back_raw(self):
        status, answer = self.request("GET", "/api/v1/jobs/%ff%fe", raw_path=True)
        self.assertEqual(status, 404)
        status, answer = self.request("GET", "/task/%ff", raw_path=True)
        self.assertEqual(status, 404)
        status, answer = self.request("GET", "/no/such/%c0%af", raw_path=True)
        self.assertEqual(status, 404)
        # Filters that are not text: refused on every store alike.
        for path in ("/api/v1/jobs?name=%ff", "/api/v1/jobs?queue=a%00b",
                     "/api/v1/events?kind=%ff&after=0", "/api/v1/failures?queue=%00"):
            status, answer = self.request("GET", path, raw_path=True)
            self.assertEqual(status, 400, (path, answer))
            self.assertIn("UTF-8 text without NUL", answer["error"]["message"])
        self.assertEqual(self.request("GET", "/task/a%00b", raw_path=True)[0], 404)
        # A task id that is not UTF-8 (a raw 0xff byte in the body) is refused...
        body = b'{"tasks": [{"task_id": "t\xff", "backend": "git", "category": "commit", ' \
               b'"backend_args": {"uri": "/x"}}]}'
        status, answer = self.request("POST", "/add", body)
        self.assertEqual(status, 400, answer)
        # ... and so are control characters, NULs and over-long ids, escaped or not.
        for task_id in ("t\u0000x", "t\u0001", "t\u007f", "t\u0085", "x" * 256, ""):
            status, answer = self.request("POST", "/add", json.dumps({"tasks": [{
                "task_id": task_id, "backend": "git", "category": "commit",
                "backend_args": {"uri": "/x"}}]}))
            self.assertIn(status, (400, 422), (task_id, answer))
        for field in ("kind", "queue", "idempotency_key"):
            job = {"kind": "exec", "payload": ["/bin/true"], field: "a\u0000b"}
            status, answer = self.request("POST", "/api/v1/jobs", json.dumps(job))
            self.assertEqual(status, 422, (field, answer))
            self.assertIn(field, answer["error"]["message"])
        self.assertEqual(self.request("GET", "/tasks")[1]["tasks"], [])
        self.assertAlive()

    def test_control_characters_in_a_commands_output_come_back_as_json(self):
        # Colored output (ESC is 0x1b) and every other control character, well past a line's
        # first 16 bytes: each event carrying them is JSON, and holds the line as written.
        controls = "".join(chr(c) for c in range(1, 32) if c != 10)
        line = "x" * 37 + controls + "\x1b[31mred\x1b[0m" + controls
        status, job = self.request("POST", "/api/v1/jobs", json.dumps(
            {"kind": "exec", "payload": ["/usr/bin/printf", "%s", line]}))
        self.assertEqual(status, 201, job)
        self.box.wait_for(lambda: self.request("GET", "/api/v1/jobs/%d" % job["id"])[1]["state"]
                          == "succeeded", what="the job to succeed")
        events = harness.SseClient(self.port, "/api/v1/events?job=%d" % job["id"])
        try:  # SseClient reads each frame's data with json.loads, which takes no raw control
            frames = events.frames(lambda f: any(x["event"] == "job.succeeded" for x in f))
        finally:
            events.close()
        lines = [f["data"]["line"] for f in frames if f["event"] == "job.log"]
        self.assertIn(line, lines)
        self.assertAlive()

    def test_strings_with_escaped_nul_are_kept_whole_or_refused(self):
        # A payload string is data: kept whole, NUL and all.
        status, job = self.request("POST", "/api/v1/jobs", json.dumps(
            {"kind": "exec", "payload": "q\u0000x"}))
        self.assertEqual(status, 201, job)
        self.box.wait_for(lambda: self.request("GET", "/api/v1/jobs/%d" % job["id"])[1]["state"]
                          == "failed", what="the job to fail")
        got = self.request("GET", "/api/v1/jobs/%d" % job["id"])[1]
        self.assertEqual(got["error"]["code"], "invalid_job")
        # An argv entry with a NUL would be cut by exec: refused, not cut.
        status, job = self.request("POST", "/api/v1/jobs", json.dumps(
            {"kind": "exec", "payload": ["/bin/echo", "q\u0000x"]}))
        self.assertEqual(status, 201, job)
        self.box.wait_for(lambda: self.request("GET", "/api/v1/jobs/%d" % job["id"])[1]["state"]
                          == "failed", what="the job to fail")
        got = self.request("GET", "/api/v1/jobs/%d" % job["id"])[1]
        self.assertIn("NUL", got["error"]["message"])


class HostileFilesTest(unittest.TestCase):
    """Poison files in exec and publish spools and in a queuedir."""

    def setUp(self):
        self.box = harness.Sandbox()

    def tearDown(self):
        self.box.close()

    def test_origins_from_submissions_do_not_grow_the_metrics_without_bound(self):
        # An object's origin comes from whoever submitted it: a spool fed a million made-up
        # origins must not make a million series (memory, and a /metrics page no scraper
        # takes). Past 1,000 series, objects are counted under origin="(other)".
        box = harness.Sandbox(api=True)
        try:
            tests = [{"id": "o%d:t" % i, "origin": "o%d" % i, "build_id": "o%d:b" % i,
                      "status": "PASS"} for i in range(1100)]
            box.drop("many.json", json.dumps({"version": {"major": 5, "minor": 3},
                                              "tests": tests}))
            box.start()
            port = box.wait_for_api()
            box.wait_for(lambda: box.listing("archive") == ["many.json"], 30, "the file to run")
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
            series = [line for line in text.splitlines()
                      if line.startswith("sluice_objects_total{")]
            self.assertEqual(len(series), 1001, series[-3:])
            other = [line for line in series if 'origin="(other)"' in line]
            self.assertEqual(len(other), 1, series[-3:])
            self.assertEqual(other[0].rsplit(" ", 1)[1], "100")
            self.assertEqual(box.stop(), 0)
        finally:
            box.close()

    def test_a_deep_exec_file_fails_as_invalid_job_and_survives_restarts(self):
        self.box.drop("deep.json", DEEP)
        self.box.drop("deep-obj.json", '{"argv": ' + DEEP + "}")
        self.box.drop("ok.json", json.dumps(["/bin/true"]))
        for _ in range(2):  # again after a restart: nothing left to crash on
            r = self.box.burst("--kind", "exec")
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        rows = dict(self.box.query("SELECT name, error_code FROM jobs WHERE state='failed'"))
        self.assertEqual(rows, {"deep.json": "invalid_job", "deep-obj.json": "invalid_job"})
        with open(os.path.join(self.box.spool, "failed", "deep.json.error.json")) as f:
            report = json.load(f)
        self.assertIn("deeper than", report["message"])
        self.assertEqual(self.box.listing("archive"), ["ok.json"])

    def test_names_at_the_limit_and_names_with_newlines_fail_cleanly(self):
        long_name = "l" * 245 + ".json"  # 250 bytes: NAME.error.json would not fit
        forged = "x\n2026-12-01T00:00:00.000 info forged line \x1b[31m.json"
        with open(os.path.join(self.box.spool, ".tmp"), "w") as f:
            f.write("{")
        os.rename(os.path.join(self.box.spool, ".tmp"), os.path.join(self.box.spool, long_name))
        self.box.drop(forged, "{")
        self.box.drop("again.json", "{")
        r = self.box.burst("--stderr-level", "info")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        failed = self.box.listing("failed")
        self.assertIn(long_name, failed)
        self.assertIn(forged, failed)
        self.assertTrue(any(n.endswith(".error.json") and n.startswith("l" * 100) for n in failed))
        self.assertEqual([n for n in self.box.listing() if n.endswith(".json")], [])
        # One event, one line: the name's newline and escape sequence are written as \xNN.
        self.assertNotIn("\n2026-12-01T00:00:00.000 info forged line", r.stderr)
        self.assertNotIn("\x1b", r.stderr)
        self.assertIn("\\x0a2026-12-01T00:00:00.000 info forged line", r.stderr)

    def test_a_deep_publish_file_fails_as_invalid_job(self):
        self.box.drop("deep.json", DEEP)
        r = self.box.burst("--kind", "publish", "--publish-url", "http://127.0.0.1:9/")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        rows = self.box.query("SELECT error_code FROM jobs WHERE name='deep.json'")
        self.assertEqual(rows, [("invalid_job",)])

    def test_a_deep_kcidb_file_fails_as_too_deep_with_the_limit_configurable(self):
        self.box.drop("deep.json", '{"version": {"major": 5, "minor": 3}, "x": '
                      + "[" * 300 + "]" * 300 + "}")
        r = self.box.burst("--max-json-depth", "400")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        # Within 400 levels it parses, and the schema refuses the unknown field.
        self.assertEqual(self.box.query("SELECT error_code FROM jobs"), [("schema_violation",)])
        self.assertNotEqual(subprocess.run(
            self.box.args("--max-json-depth", "0", "--burst"), capture_output=True).returncode, 0)

    def test_a_deep_queuedir_item_goes_to_dead_and_the_runner_lives(self):
        q = os.path.join(self.box.dir, "q")
        for sub in ("tmp", "new", "cur", "logs", "dead"):
            os.makedirs(os.path.join(q, sub))
        with open(os.path.join(q, "tmp", "poison"), "w") as f:
            f.write(DEEP)
        os.rename(os.path.join(q, "tmp", "poison"), os.path.join(q, "new", "poison"))
        with open(os.path.join(self.box.dir, "runner.log"), "wb") as log:
            proc = subprocess.Popen([harness.SLUICE, "command-runner", q, "-r", "3", "-t", "0"],
                                    stdout=log, stderr=log)
        try:
            deadline = time.time() + 30
            while "poison" not in os.listdir(os.path.join(q, "dead")):
                self.assertIsNone(proc.poll(), "the runner died")
                self.assertLess(time.time(), deadline)
                time.sleep(0.05)
            self.assertIsNone(proc.poll())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        with open(os.path.join(q, "dead", "poison.log")) as f:
            self.assertEqual(f.read(), "Couldn't load json; murdering\n")  # command_runner's
        error = self.box.query_db(os.path.join(q, "sluice.db"),
                                  "SELECT error_message FROM jobs WHERE name='poison'")
        self.assertIn("deeper than", error[0][0])


class HostileFlagsTest(unittest.TestCase):
    """A duration flag given nonsense is refused before anything starts, naming the flag in
    one short line (not a range up to DBL_MAX in 300 digits, not a conversion overflow)."""

    SERVE = ["--interval", "--http-timeout", "--sse-keepalive", "--event-max-age",
             "--job-max-age", "--failed-job-max-age",
             "--retry-time", "--worker-lease", "--pair-timeout", "--max-time", "--kill-grace",
             "--publish-timeout", "--reconcile-interval", "--lease", "--task-lease",
             "--task-retry-delay", "--task-timeout", "--retry-delay", "--retry-max-delay",
             "--settle", "--progress-interval", "--storage-connect-timeout",
             "--storage-timeout"]
    RUNNER = ["-t", "-m", "--kill-grace", "--event-max-age", "--job-max-age",
              "--failed-job-max-age"]
    CHECK = ["-t", "--heartbeat-age"]
    # The name an error gives a short flag: its long one.
    LONG = {"command-runner": {"-t": "--retry_time", "-m": "--max_time"},
            "check": {"-t": "--max-age"}}

    def test_every_duration_flag_refuses_what_is_not_a_duration(self):
        box = harness.Sandbox()
        try:
            queuedir = os.path.join(box.dir, "q")
            commands = [(["serve", "--spool-dir", box.spool, "--no-api", "--burst",
                          "--database", "sqlite:" + box.db], self.SERVE),
                        (["command-runner", queuedir], self.RUNNER),
                        (["check", "--spool-dir", box.spool], self.CHECK)]
            for args, flags in commands:
                for flag in flags:
                    for value in ("-1", "1e300", "nan", "inf", "-inf", "1e400", "x"):
                        r = subprocess.run([harness.SLUICE] + args + [flag, value],
                                           capture_output=True, text=True, timeout=60)
                        what = (args[0], flag, value, r.stderr)
                        self.assertEqual(r.returncode, 2, what)
                        first = r.stderr.splitlines()[0]
                        self.assertIn(self.LONG.get(args[0], {}).get(flag, flag), first, what)
                        self.assertLess(len(first), 200, what)
            # The retention's ages are whole seconds: a fraction is said so, not "Could not
            # convert".
            for args, _ in commands[:2]:
                for flag in ("--event-max-age", "--job-max-age", "--failed-job-max-age"):
                    r = subprocess.run([harness.SLUICE] + args + [flag, "1.5"],
                                       capture_output=True, text=True, timeout=60)
                    self.assertEqual(r.returncode, 2, r.stderr)
                    self.assertIn("%s: '1.5' is not a whole number of seconds" % flag,
                                  r.stderr.splitlines()[0])
            # Sizes: said as a flag's error, not as the logging library's; -1 is not taken
            # for 2^64 - 1, nor a number past 2^64 for the largest.
            for flag, value in (("--log-file-max-bytes", "0"), ("--log-file-backups", "300000"),
                                ("--log-file-max-bytes", "-5"), ("--max-body-bytes", "-1"),
                                ("--max-body-memory", "99999999999999999999"),
                                ("--max-file-bytes", "-1"), ("--max-file-bytes", "1e9")):
                r = subprocess.run([harness.SLUICE] + commands[0][0] + [
                    "--log-file", os.path.join(box.dir, "l.log"), flag, value],
                    capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 2, (flag, value, r.stderr))
                self.assertIn(flag, r.stderr.splitlines()[0])
            self.assertFalse(os.path.exists(queuedir))  # nothing was started
            self.assertEqual(os.listdir(box.spool), [])
            self.assertFalse(os.path.exists(box.db))
        finally:
            box.close()


if __name__ == "__main__":
    harness.main()
