"""`sluice submit` and `sluice cancel` against a running daemon, as an operator uses them:
a file or stdin, the job's options, `--wait` for its end, and every refusal with its exit
code (2 bad input, 3 not found, 1 unreachable or the job failed)."""

import json
import os
import subprocess
import time
import unittest

import harness

TOKEN = "cli-tok"


class SubmitCliTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.box.start("--api-token", TOKEN, "--max-workers", "1")
        self.api = "http://127.0.0.1:%d" % self.box.wait_for_api()
        self.token_file = os.path.join(self.box.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")

    def tearDown(self):
        self.box.close()

    def cli(self, *args, stdin=None, token=True, api=None):
        auth = ["--api-token-file", self.token_file] if token else []
        return subprocess.run([harness.SLUICE] + list(args) + ["--api", api or self.api] + auth,
                              input=stdin, capture_output=True, text=True, timeout=60)

    def write(self, name, content):
        path = os.path.join(self.box.dir, name)
        with open(path, "wb") as f:
            f.write(content if isinstance(content, bytes) else json.dumps(content).encode())
        return path

    def test_a_file_is_submitted_and_waited_for(self):
        path = self.write("good.json", harness.GOOD)
        r = self.cli("submit", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        job = json.loads(r.stdout)
        self.assertEqual((job["kind"], job["origin"]), ("kcidb", "api"))
        self.assertIn(job["state"], ("queued", "running", "succeeded"))

        r = self.cli("submit", "--wait", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        done = json.loads(r.stdout)
        self.assertEqual(done["state"], "succeeded")
        self.assertGreater(done["id"], job["id"])
        self.assertEqual(done["result"]["version"], "5.3")

    def test_stdin_and_every_option_reach_the_job(self):
        due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        args = ["submit", "-", "--queue", "nightly", "--priority", "7", "--max-attempts", "2",
                "--run-at", due, "--idempotency-key", "sub-42"]
        r = self.cli(*args, stdin=json.dumps(harness.GOOD))
        self.assertEqual(r.returncode, 0, r.stderr)
        job = json.loads(r.stdout)
        self.assertEqual((job["queue"], job["priority"], job["max_attempts"],
                          job["idempotency_key"], job["state"]),
                         ("nightly", 7, 2, "sub-42", "queued"))
        self.assertTrue(job["run_at"].startswith(due[:19]))
        again = self.cli(*args, stdin=json.dumps(harness.GOOD))
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(json.loads(again.stdout)["id"], job["id"])  # the key: the same job

        r = self.cli("cancel", str(job["id"]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["state"], "cancelled")
        r = self.cli("cancel", str(job["id"]))  # ended already
        self.assertEqual(r.returncode, 2)
        self.assertEqual(json.loads(r.stdout)["error"]["code"], "failed_precondition")
        self.assertEqual(self.cli("cancel", "424242").returncode, 3)
        for bad in ("-1", "x1", "1.5", "99999999999999999999999"):
            r = self.cli("cancel", "--", bad)
            self.assertEqual(r.returncode, 2, (bad, r.stdout, r.stderr))

    def test_a_job_that_fails_or_is_cancelled_exits_1_with_it(self):
        bad = dict(harness.GOOD, tests=[{"id": "x"}])  # no origin, build_id nor status
        r = self.cli("submit", "--wait", self.write("bad.json", bad))
        self.assertEqual(r.returncode, 1, r.stderr)
        job = json.loads(r.stdout)
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "schema_violation"))

        due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        path = self.write("later.json", harness.GOOD)
        r = self.cli("submit", "--wait", "--timeout", "0.5", "--run-at", due, path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("still queued after 0.5 s", r.stderr)
        waiting = json.loads(r.stdout)
        self.assertEqual(waiting["state"], "queued")
        waiter = subprocess.Popen(
            [harness.SLUICE, "submit", "--wait", "--run-at", due, "--idempotency-key", "w",
             path, "--api", self.api, "--api-token-file", self.token_file],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # The same key names the waiter's job, whichever request came first.
            r = self.cli("submit", "--run-at", due, "--idempotency-key", "w", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(self.cli("cancel", str(json.loads(r.stdout)["id"])).returncode, 0)
            out, err = waiter.communicate(timeout=30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        self.assertEqual(waiter.returncode, 1, err)
        self.assertEqual(json.loads(out)["state"], "cancelled")

    def test_refusals_and_their_exit_codes(self):
        good = self.write("good.json", harness.GOOD)
        cases = [
            # bad input, named before anything is sent: 2
            (["submit", self.write("t.json", b'{"version":')], 2, "not valid JSON"),
            (["submit", self.write("u.json", b'\xff\xfe{}')], 2, "Invalid encoding"),
            (["submit", self.write("e.json", b"")], 2, ""),
            (["submit", self.write("d.json", b"[" * 20000)], 2, "nested deeper"),
            (["submit", self.box.dir], 2, "is a directory"),
            (["submit", "--timeout", "5", good], 2, "--timeout goes with --wait"),
            (["submit", "--timeout", "-1", "--wait", good], 2, ""),
            (["submit", "--priority", "1e3", good], 2, ""),
            # the daemon's refusals: 2, with its JSON error on stdout
            (["submit", "--kind", "nope", good], 2, ""),
            (["submit", "--kind", "", good], 2, ""),
            (["submit", "--run-at", "yesterday", good], 2, ""),
            (["submit", "--max-attempts", "0", good], 2, ""),
            (["submit", "--queue", "a\nb", good], 2, ""),
            (["submit", self.write("deep.json", b"[" * 300 + b"]" * 300)], 2, ""),
            # missing: 3
            (["submit", os.path.join(self.box.dir, "absent.json")], 3, "no such file"),
        ]
        for args, code, says in cases:
            r = self.cli(*args)
            self.assertEqual(r.returncode, code, (args, r.stdout, r.stderr))
            self.assertIn(says, r.stderr, args)
            if r.stdout.strip():
                self.assertIn("error", json.loads(r.stdout), args)
        # --api: http(s) only (curl would read a file:// URL), HOST:PORT taken as http.
        for api in ("file://" + good, "ftp://127.0.0.1/", "gopher://127.0.0.1:70/"):
            r = self.cli("submit", good, api=api)
            self.assertEqual(r.returncode, 2, (api, r.stdout, r.stderr))
            self.assertIn("is not an http:// or https:// URL", r.stderr)
        r = self.cli("submit", good, api="127.0.0.1:%d" % self.box.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.cli("submit", good, token=False)  # no token: 401
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout)["error"]["code"], "unauthorized")
        self.box.stop()
        r = self.cli("submit", good)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach the daemon", r.stderr)
        # None of the refused submissions became a job (the one given HOST:PORT did).
        done = harness.sqlite3.connect(self.box.db).execute(
            "SELECT COUNT(*) FROM jobs").fetchone()[0]
        self.assertEqual(done, 1)


if __name__ == "__main__":
    harness.main()
