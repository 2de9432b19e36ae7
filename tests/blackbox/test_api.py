"""The HTTP API through real HTTP: authentication, every error status it can give for bad
input, pagination, limits and timeouts, and many idle connections on one I/O thread."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

import harness

TOKEN = "tok-123"


class ApiTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)

    def tearDown(self):
        self.box.close()

    def start(self, *extra):
        self.box.start("--api-token", TOKEN, *extra)
        return self.box.wait_for_api()

    def request(self, method, path, token=TOKEN, body=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        headers = {"Authorization": "Bearer " + token} if token else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        self.assertEqual(r.getheader("Content-Type"), "application/json", data)
        return r.status, json.loads(data) if data else None

    def synthetic_jobs(self, count, kind="'kcidb'", result="NULL"):
        """A store of `count` succeeded jobs, ids 1 to count; `kind` and `result` are SQL of
        the row number i."""
        r = self.box.burst()  # the schema
        self.assertEqual(r.returncode, 0, r.stderr)
        base = int(time.time() * 1e6) - count  # recent: within the jobs' retention
        con = harness.sqlite3.connect(self.box.db)
        con.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
            " INSERT INTO jobs(id, queue, kind, spool, name, state, max_attempts, created_at,"
            " finished_at, result) SELECT i, 'default', %s, '/x', 'f' || i || '.json',"
            " 'succeeded', 5, %d + i, %d + i, %s FROM n"
            % (count, kind, base, base, result))
        con.commit()
        con.close()

    def test_authentication_guards_everything_but_healthz(self):
        self.start()
        self.assertEqual(self.request("GET", "/healthz", token=None), (200, {"status": "ok"}))
        status, body = self.request("GET", "/api/v1/jobs", token=None)
        self.assertEqual(status, 401)
        self.assertEqual(body["error"]["code"], "unauthorized")
        self.assertEqual(self.request("GET", "/api/v1/jobs", token="tok-12")[0], 401)
        self.assertEqual(self.request("GET", "/api/v1/jobs", token=TOKEN + "x")[0], 401)
        self.assertEqual(self.request("GET", "/readyz")[0], 200)
        self.assertEqual(self.request("GET", "/api/v1/jobs")[0], 200)

    def test_the_token_can_come_from_the_environment(self):
        os.environ["SLUICE_API_TOKEN"] = "from-env"
        try:
            self.box.start()
            self.box.wait_for_api()
        finally:
            del os.environ["SLUICE_API_TOKEN"]
        self.assertEqual(self.request("GET", "/api/v1/jobs", token=None)[0], 401)
        self.assertEqual(self.request("GET", "/api/v1/jobs", token="from-env")[0], 200)

    def test_jobs_page_newest_first_with_cursors_and_filters(self):
        self.start()
        for i in range(7):
            self.box.drop("p%d.json" % i, harness.GOOD)
        self.box.drop("bad.json", "{")
        self.box.wait_for(lambda: len(self.box.listing("archive")) == 7 and
                          "bad.json" in self.box.listing("failed"), what="drain")
        seen, cursor = [], None
        while True:
            path = "/api/v1/jobs?limit=3" + ("&cursor=" + cursor if cursor else "")
            status, body = self.request("GET", path)
            self.assertEqual(status, 200)
            seen += [j["id"] for j in body["jobs"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(len(seen), 8)
        self.assertEqual(seen, sorted(seen, reverse=True))
        status, body = self.request("GET", "/api/v1/jobs?state=failed")
        self.assertEqual([j["name"] for j in body["jobs"]], ["bad.json"])
        self.assertEqual(body["jobs"][0]["error"]["code"], "invalid_json")
        status, body = self.request("GET", "/api/v1/jobs?kind=kcidb&queue=default&limit=1000")
        self.assertEqual(len(body["jobs"]), 8)
        self.assertEqual(self.request("GET", "/api/v1/jobs?queue=other")[1]["jobs"], [])
        status, job = self.request("GET", "/api/v1/jobs/%d" % seen[0])
        self.assertEqual((status, job["id"]), (200, seen[0]))
        status, queues = self.request("GET", "/api/v1/queues")
        self.assertEqual(queues["queues"][0]["jobs"], {"failed": 1, "succeeded": 7})
        status, spools = self.request("GET", "/api/v1/spools")
        self.assertEqual(spools["spools"][0]["path"], os.path.realpath(self.box.spool))
        self.assertEqual(spools["spools"][0]["succeeded"], 7)

    def test_bad_input_gets_json_errors_never_a_500(self):
        self.start("--max-body-bytes", "1000")
        cases = [
            ("GET", "/api/v1/jobs?state=sleeping", 400, "invalid_argument"),
            ("GET", "/api/v1/jobs?limit=0", 400, "invalid_argument"),
            ("GET", "/api/v1/jobs?limit=abc", 400, "invalid_argument"),
            ("GET", "/api/v1/jobs?limit=1001", 400, "invalid_argument"),
            ("GET", "/api/v1/jobs?cursor=-5", 400, "invalid_argument"),
            ("GET", "/api/v1/jobs?state=%zz", 400, "invalid_argument"),
            ("GET", "/api/v1/jobs/999999", 404, "not_found"),
            ("GET", "/api/v1/jobs/abc", 404, "not_found"),
            ("GET", "/api/v1/jobs/1/x/y", 404, "not_found"),
            ("GET", "/nothing/here", 404, "not_found"),
            ("DELETE", "/api/v1/jobs", 405, "method_not_allowed"),
        ]
        for method, path, status, code in cases:
            got, body = self.request(method, path)
            self.assertEqual((got, body["error"]["code"]), (status, code), path)
            self.assertTrue(body["error"]["message"], path)
        status, body = self.request("GET", "/api/v1/jobs", body="x" * 5000)
        self.assertEqual((status, body["error"]["code"]), (413, "payload_too_large"))
        with socket.create_connection(("127.0.0.1", self.box.port)) as s:
            s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            reply = s.recv(4096).decode(errors="replace")
        self.assertTrue(reply.startswith("HTTP/1.1 400"), reply)
        self.assertIn('"code":"bad_request"', reply)
        self.assertEqual(self.request("GET", "/healthz")[0], 200)

    def test_keep_alive_idle_timeout_and_many_idle_connections(self):
        self.start("--http-timeout", "1")
        conn = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        for _ in range(5):
            self.assertEqual(self.request("GET", "/api/v1/jobs", conn=conn)[0], 200)
        idle = [socket.create_connection(("127.0.0.1", self.box.port)) for _ in range(500)]
        self.assertEqual(self.request("GET", "/readyz")[0], 200)
        with open("/proc/%d/status" % self.box.proc.pid) as f:
            threads = int(f.read().split("Threads:")[1].split()[0])
        self.assertLess(threads, 20)  # no thread per connection
        time.sleep(2)
        idle[0].settimeout(5)
        self.assertEqual(idle[0].recv(10), b"")  # closed by the server after --http-timeout
        for s in idle:
            s.close()
        conn.close()

    def test_answers_frame_right_when_pipelined_head_304_and_larger_than_the_socket_takes(self):
        self.start()
        for i in range(1000):
            self.box.drop("big-%04d.json" % i, harness.GOOD)
        self.box.wait_for(lambda: self.box.query(
            "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'")[0][0] == 1000, 60, "1000 jobs")

        def read_answer(sock, buf, head_only=False):
            """One response off `sock`: (status, headers, body, rest of buf)."""
            while b"\r\n\r\n" not in buf:
                data = sock.recv(4096)
                self.assertTrue(data, "closed mid-head: %r" % buf)
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:])
            length = 0 if head_only else int(headers.get("Content-Length", 0))
            while len(buf) < length:
                data = sock.recv(4096)
                self.assertTrue(data, "closed mid-body")
                buf += data
                time.sleep(0.001)  # a slow reader: the server's writes wait on it
            return int(lines[0].split()[1]), headers, buf[:length], buf[length:]

        auth = "Authorization: Bearer %s\r\n" % TOKEN
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        sock.settimeout(20)
        sock.connect(("127.0.0.1", self.box.port))
        # Three requests at once: the first answer is far more than the socket takes.
        sock.sendall(("GET /api/v1/jobs?limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                      "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % auth).encode())
        time.sleep(0.5)
        status, headers, body, buf = read_answer(sock, b"")
        self.assertEqual(status, 200)
        self.assertGreater(len(body), 200000)
        self.assertEqual(len(json.loads(body)["jobs"]), 1000)
        status, headers, body, buf = read_answer(sock, buf, head_only=True)
        self.assertEqual((status, headers["Content-Length"]), (200, "15"))  # as GET's body
        status, headers, body, buf = read_answer(sock, buf)
        self.assertEqual(status, 200)
        self.assertIn(b"<!doctype html>", body)
        etag = headers["ETag"]
        # Not modified: no body, no length, no type; the connection still serves.
        sock.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: %s\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" %
                      etag).encode())
        status, headers, body, buf = read_answer(sock, buf)
        self.assertEqual(status, 304)
        self.assertNotIn("Content-Length", headers)
        self.assertNotIn("Content-Type", headers)
        status, headers, body, buf = read_answer(sock, buf)
        self.assertEqual((status, body, headers.get("Connection")),
                         (200, b'{"status":"ok"}', "close"))
        self.assertEqual(sock.recv(10), b"")  # and closed, as asked
        sock.close()

    def test_expect_100_continue_is_answered_before_the_body(self):
        self.start("--max-body-bytes", "2000000")
        body = json.dumps({"kind": "kcidb", "payload": harness.GOOD}).encode()

        def ask(length, send_body):
            sock = socket.create_connection(("127.0.0.1", self.box.port), timeout=10)
            sock.sendall(("POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s"
                          "\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                          "Expect: 100-continue\r\n\r\n" % (TOKEN, length)).encode())
            sock.settimeout(2)  # curl waits 1 s, then sends anyway: the answer must come first
            first = sock.recv(65536)
            if send_body:
                sock.sendall(body)
                sock.settimeout(10)
                while b"\r\n\r\n" not in first.split(b"\r\n\r\n", 1)[1]:
                    first += sock.recv(65536)
            sock.close()
            return first.decode()

        answer = ask(len(body), True)
        self.assertTrue(answer.startswith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 "), answer)
        # Too large: the final answer at once, no 100, and the body is never asked for.
        answer = ask(3000000, False)
        self.assertTrue(answer.startswith("HTTP/1.1 413 "), answer)
        self.assertIn("payload_too_large", answer)
        # curl sends Expect for bodies over 1 MB and waits a second for the 100.
        big = os.path.join(self.box.dir, "big.json")
        with open(big, "w") as f:
            json.dump({"kind": "kcidb", "payload": dict(harness.GOOD, tests=[
                {"id": "bb:t%d" % i, "origin": "bb", "build_id": "bb:b1", "status": "PASS",
                 "comment": "x" * 100} for i in range(8000)])}, f)
        r = subprocess.run(["curl", "-sv", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                            "Authorization: Bearer " + TOKEN, "-H",
                            "Content-Type: application/json", "--data-binary", "@" + big,
                            "http://127.0.0.1:%d/api/v1/jobs" % self.box.port],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout, "201", r.stderr)
        self.assertIn("< HTTP/1.1 100 Continue", r.stderr)
        self.assertNotIn("Done waiting for 100-continue", r.stderr)  # curl's one-second wait

    def test_metrics_pass_promtool_and_count_what_happened(self):
        self.start()
        self.box.drop("good.json", harness.GOOD)
        self.box.drop("bad.json", "{")
        self.box.wait_for(lambda: "bad.json" in self.box.listing("failed") and
                          "good.json" in self.box.listing("archive"), what="drain")
        self.assertEqual(self.request("GET", "/metrics", token=None)[0], 401)
        sse = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        sse.request("GET", "/api/v1/events", headers={"Authorization": "Bearer " + TOKEN})
        stream = sse.getresponse()  # a live reader while metrics are read (kept open)
        self.assertEqual(stream.status, 200)
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        c.request("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain; version=0.0.4"))
        check = subprocess.run(["promtool", "check", "metrics"], input=text,
                               capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        for line in ['sluice_jobs{queue="default",state="failed"} 1',
                     'sluice_jobs{queue="default",state="succeeded"} 1',
                     'code="invalid_json"} 1',
                     'sluice_objects_total{kind="kcidb",type="tests",origin="bb"} 1',
                     'sluice_job_processing_seconds_count{kind="kcidb",spool=',
                     'sluice_events_written_total 6', 'sluice_sse_clients 1']:
            self.assertIn(line, text)
        stream.close()

    def submit(self, body, token=TOKEN):
        return self.request("POST", "/api/v1/jobs", token=token,
                            body=body if isinstance(body, str) else json.dumps(body))

    def wait_state(self, job_id, state, timeout=30):
        def reached():
            return self.request("GET", "/api/v1/jobs/%d" % job_id)[1]["state"] == state
        self.box.wait_for(reached, timeout, "job %d %s" % (job_id, state))
        return self.request("GET", "/api/v1/jobs/%d" % job_id)[1]

    def test_jobs_submitted_over_http_run_the_same_pipeline(self):
        self.start()
        status, job = self.submit({"kind": "kcidb", "payload": harness.GOOD,
                                   "idempotency_key": "once"})
        self.assertEqual(status, 201)
        self.assertEqual((job["state"], job["origin"]), ("queued", "api"))
        done = self.wait_state(job["id"], "succeeded")
        self.assertEqual(done["result"]["tests"], 1)
        self.assertEqual(self.box.query("SELECT id FROM tests"), [("bb:t1",)])
        status, again = self.submit({"kind": "kcidb", "payload": {}, "idempotency_key": "once"})
        self.assertEqual((status, again["id"]), (200, job["id"]))
        status, bad = self.submit({"kind": "kcidb", "payload": {"version": {"major": 5,
                                   "minor": 3}, "tests": [{"id": "nope"}]}})
        self.assertEqual(status, 201)
        failed = self.wait_state(bad["id"], "failed")
        self.assertEqual(failed["error"]["code"], "schema_violation")

    def test_one_idempotency_key_sent_at_once_by_many_clients_is_one_job(self):
        # Requests racing with one key share a group commit: the store refuses all but one,
        # and every answer must name that one (a 201 with an id that was never stored sent
        # clients after a job that did not exist).
        for store in ("sqlite", "postgresql"):
            with self.subTest(store=store):
                self.box.close()
                self.box = harness.Sandbox(api=True, store=store)
                self.start("--kind", "exec")
                for round in range(5):
                    key = "key-%d" % round
                    answers = []

                    def send():
                        answers.append(self.submit({"kind": "exec", "payload": ["/bin/true"],
                                                    "idempotency_key": key}))
                    threads = [threading.Thread(target=send) for _ in range(30)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    said = sorted((status, job["id"]) for status, job in answers)
                    ids = {job["id"] for status, job in answers}
                    self.assertEqual(len(ids), 1, said)
                    self.assertEqual([status for status, _ in said], [200] * 29 + [201], said)
                    status, job = self.request("GET", "/api/v1/jobs/%d" % ids.pop())
                    self.assertEqual((status, job["idempotency_key"]), (200, key))
                self.assertEqual(self.box.query("SELECT COUNT(*) FROM jobs")[0][0], 5)

    def test_a_submission_that_is_not_a_job_gets_400_or_422(self):
        self.start()
        cases = [("{not json", 400, "invalid_json"),
                 ("[1]", 422, "invalid_request"),
                 ({"payload": {}}, 422, "invalid_request"),
                 ({"kind": "kcidb"}, 422, "invalid_request"),
                 ({"kind": "kcidb", "payload": None}, 422, "invalid_request"),
                 ({"kind": "exec", "payload": {}}, 422, "invalid_request"),
                 ({"kind": "kcidb", "payload": {}, "colour": 1}, 422, "invalid_request"),
                 ({"kind": "kcidb", "payload": {}, "priority": "high"}, 422, "invalid_request"),
                 ({"kind": "kcidb", "payload": {}, "max_attempts": 0}, 422, "invalid_request"),
                 ({"kind": "kcidb", "payload": {}, "run_at": "tomorrow"}, 422,
                  "invalid_request"),
                 ({"kind": "kcidb", "payload": {}, "queue": ""}, 422, "invalid_request"),
                 ({"kind": "kcidb", "payload": {}, "idempotency_key": 5}, 422,
                  "invalid_request")]
        for body, status, code in cases:
            got, answer = self.submit(body)
            self.assertEqual((got, answer["error"]["code"]), (status, code), body)
        self.assertEqual(self.submit({"kind": "kcidb", "payload": {}}, token=None)[0], 401)
        self.assertEqual(self.request("GET", "/api/v1/jobs")[1]["jobs"], [])

    def test_a_job_due_later_waits_and_survives_kill_9(self):
        self.start()
        due_at = time.time() + 3
        due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due_at))
        status, job = self.submit({"kind": "kcidb", "payload": harness.GOOD, "run_at": due})
        self.assertEqual(status, 201)
        time.sleep(0.5)
        self.assertEqual(self.request("GET", "/api/v1/jobs/%d" % job["id"])[1]["state"], "queued")
        self.box.stop(signal.SIGKILL)
        open(os.path.join(self.box.dir, "daemon.log"), "w").close()  # forget the old port
        self.box.start("--api-token", TOKEN)
        self.box.wait_for_api()
        done = self.wait_state(job["id"], "succeeded")
        self.assertGreaterEqual(time.time(), due_at - 1)  # not before it was due
        self.assertEqual(done["attempts"], 1)

    def test_jobs_held_over_http_are_bounded_by_count_and_by_payload_bytes(self):
        # Jobs sent over HTTP are held in memory, payload and all, until they end: a client
        # scheduling them far ahead (or sending faster than they run) meets 503, not an OOM.
        self.start("--max-api-jobs", "3")
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        held = []
        for i in range(3):
            status, job = self.submit({"kind": "kcidb", "payload": harness.GOOD,
                                       "run_at": later, "idempotency_key": "k%d" % i})
            self.assertEqual(status, 201)
            held.append(job["id"])
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        c.request("POST", "/api/v1/jobs", body=json.dumps({"kind": "kcidb",
                                                           "payload": harness.GOOD}),
                  headers={"Authorization": "Bearer " + TOKEN})
        r = c.getresponse()
        answer = json.loads(r.read())
        c.close()
        self.assertEqual((r.status, answer["error"]["code"]), (503, "unavailable"))
        self.assertEqual(r.getheader("Retry-After"), "1")
        self.assertIn("--max-api-jobs", answer["error"]["message"])
        # Full, a repeat of a held job is still answered with it: it adds nothing.
        status, again = self.submit({"kind": "kcidb", "payload": harness.GOOD,
                                     "run_at": later, "idempotency_key": "k1"})
        self.assertEqual((status, again["id"]), (200, held[1]))
        # A job that ends makes room again.
        self.assertEqual(self.request("POST", "/api/v1/jobs/%d/cancel" % held[0])[0], 200)
        taken = []

        def accepted():
            status, job = self.submit({"kind": "kcidb", "payload": harness.GOOD})
            if status == 201:
                taken.append(job["id"])
            return status == 201
        self.box.wait_for(accepted, 10, "room after the cancel")
        self.wait_state(taken[0], "succeeded")
        # After kill -9 the held jobs are recovered, and they count.
        self.box.stop(signal.SIGKILL)
        open(os.path.join(self.box.dir, "daemon.log"), "w").close()  # forget the old port
        self.start("--max-api-jobs", "2")
        status, answer = self.submit({"kind": "kcidb", "payload": harness.GOOD})
        self.assertEqual((status, answer["error"]["code"]), (503, "unavailable"))
        # By bytes: beside the two small ones, one payload of 150 kB fits, a second does not.
        self.box.stop()
        open(os.path.join(self.box.dir, "daemon.log"), "w").close()
        self.start("--max-api-bytes", "200000")
        big = dict(harness.GOOD, tests=[dict(harness.GOOD["tests"][0], comment="x" * 150000)])
        status, _ = self.submit({"kind": "kcidb", "payload": big, "run_at": later})
        self.assertEqual(status, 201)
        status, answer = self.submit({"kind": "kcidb", "payload": big, "run_at": later})
        self.assertEqual((status, answer["error"]["code"]), (503, "unavailable"))
        self.assertIn("--max-api-bytes", answer["error"]["message"])
        status, _ = self.submit({"kind": "kcidb", "payload": harness.GOOD, "run_at": later})
        self.assertEqual(status, 201)
        # A payload larger than the whole budget could never fit: 422, not a 503 to retry.
        huge = dict(harness.GOOD, tests=[dict(harness.GOOD["tests"][0], comment="x" * 250000)])
        status, answer = self.submit({"kind": "kcidb", "payload": huge})
        self.assertEqual((status, answer["error"]["code"]), (422, "invalid_request"))
        self.assertIn("--max-api-bytes", answer["error"]["message"])

    def test_priority_moves_the_last_of_10000_files_to_the_front(self):
        r = self.box.sluice("demo-data", self.box.spool, "--count", "10000",
                            "--tests-per-file", "100")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.start("--max-workers", "1", "--settle", "0")
        newest = {}

        def registered():  # the newest file (processing goes oldest first)
            r = self.box.sluice("show", "--database", "sqlite:" + self.box.db,
                                "demo-009999-1.json")
            if r.returncode == 0:
                newest.update(json.loads(r.stdout))
            return bool(newest)
        self.box.wait_for(registered, 30, "all files registered")
        backlog = self.request("GET", "/api/v1/spools")[1]["spools"][0]["backlog"]
        self.assertGreater(backlog, 5000)
        asked = time.time()
        status, job = self.request("POST", "/api/v1/jobs/%d/priority" % newest["id"])
        self.assertEqual(status, 200)
        self.assertEqual(job["priority"], 1000)
        done = self.wait_state(newest["id"], "succeeded")
        finished = time.mktime(time.strptime(done["finished_at"][:19], "%Y-%m-%dT%H:%M:%S")) \
            - time.timezone + float("0." + done["finished_at"][20:26])
        self.assertLess(finished - asked, 0.1)
        self.assertGreater(self.request("GET", "/api/v1/spools")[1]["spools"][0]["backlog"],
                           1000)  # the rest still waits

    def test_cancel_a_waiting_job_and_refuse_the_rest(self):
        self.start("--max-workers", "1")
        due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        status, later = self.submit({"kind": "kcidb", "payload": harness.GOOD, "run_at": due})
        status, job = self.request("POST", "/api/v1/jobs/%d/cancel" % later["id"])
        self.assertEqual((status, job["state"]), (200, "cancelled"))
        status, body = self.request("POST", "/api/v1/jobs/%d/cancel" % later["id"])
        self.assertEqual((status, body["error"]["code"]), (409, "failed_precondition"))
        self.box.drop("c.json", harness.GOOD)
        self.box.wait_for(lambda: "c.json" in self.box.listing("archive"), what="c.json")
        done = self.request("GET", "/api/v1/jobs?state=succeeded")[1]["jobs"][0]
        status, body = self.request("POST", "/api/v1/jobs/%d/priority" % done["id"])
        self.assertEqual(status, 409)
        self.assertEqual(self.request("POST", "/api/v1/jobs/424242/cancel")[0], 404)
        self.assertEqual(self.request("GET", "/api/v1/jobs/%d/cancel" % done["id"])[0], 405)
        self.assertEqual(self.request("POST", "/api/v1/jobs/%d/explode" % done["id"])[0], 404)
        self.box.wait_for(lambda: self.request("GET", "/api/v1/jobs/%d" % later["id"])[1]
                          .get("finished_at"), what="cancel committed")

    def test_a_public_host_needs_a_token_or_insecure(self):
        r = subprocess.run(self.box.args("--host", "0.0.0.0", "--burst"), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--api-token", r.stderr)
        r = subprocess.run(self.box.args("--host", "0.0.0.0", "--insecure", "--burst"),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_slow_store_reads_do_not_hold_the_other_connections(self):
        # GETs answered from the store ran on the I/O thread every connection and event
        # stream shares: on a store of a million jobs a read no index serves (?retried=1)
        # took 0.19 s, and every other request waited for it. Such a read walks at most
        # 100,000 jobs now (the test below); jobs with 3 KB results make that walk slow (0.1 s).
        self.synthetic_jobs(100000, result="'\"' || hex(randomblob(1500)) || '\"'")
        self.start()
        # The prober is a process of its own, so that nothing of this one (Python's lock)
        # delays it.
        prober = subprocess.Popen(
            [sys.executable, "-c",
             "import http.client, sys, time\n"
             "worst = 0\n"
             "while not sys.stdin.closed:\n"
             "    c = http.client.HTTPConnection('127.0.0.1', %d, timeout=10)\n"
             "    sent = time.monotonic()\n"
             "    c.request('GET', '/healthz'); c.getresponse().read(); c.close()\n"
             "    worst = max(worst, time.monotonic() - sent)\n"
             "    print(worst, flush=True)\n"
             "    time.sleep(0.005)\n" % self.box.port],
            stdout=subprocess.PIPE, text=True)
        reads = []
        try:
            for _ in range(8):
                sent = time.monotonic()
                c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
                c.request("GET", "/api/v1/jobs?retried=1",
                          headers={"Authorization": "Bearer " + TOKEN})
                r = c.getresponse()
                data = r.read()
                c.close()
                reads.append(time.monotonic() - sent)
                self.assertEqual((r.status, json.loads(data)["jobs"]), (200, []))
        finally:
            prober.kill()
            out, _ = prober.communicate()
        worst = float(out.split()[-1])
        slow = sorted(reads)[len(reads) // 2]
        # A probe caught behind a read waits for the rest of it: half a read, on average.
        self.assertLess(worst, slow / 2, "reads took %.3f s (median), probes up to %.3f s"
                        % (slow, worst))

    def test_a_filter_no_index_serves_walks_the_history_a_stretch_at_a_time(self):
        # ?kind=nope read every job ever run (1.5 s on five million, with every other store
        # read queued behind it). Such a page walks at most 100,000 ids and its next_cursor
        # goes on below: following the cursors still finds every match, once.
        self.synthetic_jobs(250000, kind="CASE WHEN i IN (3, 120000, 120001, 249999) THEN"
                                         " 'exec' ELSE 'kcidb' END")
        self.start()
        found, cursors, path = [], [], "/api/v1/jobs?kind=exec&limit=1000"
        while True:
            status, page = self.request("GET", path)
            self.assertEqual(status, 200, page)
            found += [j["id"] for j in page["jobs"]]
            if page["next_cursor"] is None:
                break
            cursors.append(int(page["next_cursor"]))
            path = "/api/v1/jobs?kind=exec&limit=1000&cursor=" + page["next_cursor"]
        self.assertEqual(found, [249999, 120001, 120000, 3])
        self.assertEqual(cursors, [150001, 50001])
        # No match at all: the first page is empty and says where to go on.
        status, page = self.request("GET", "/api/v1/jobs?kind=nope")
        self.assertEqual((status, page), (200, {"jobs": [], "next_cursor": "150001"}))
        status, page = self.request("GET", "/api/v1/jobs?retried=1&cursor=150001")
        self.assertEqual((status, page), (200, {"jobs": [], "next_cursor": "50001"}))
        # A filter an index serves pages as before: full pages.
        status, page = self.request("GET", "/api/v1/jobs?state=succeeded&limit=1000&cursor="
                                    "100500")
        self.assertEqual(len(page["jobs"]), 1000)
        self.assertEqual(page["next_cursor"], "99500")

    def test_a_taken_port_given_explicitly_is_an_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            r = subprocess.run(self.box.args("--port", str(port), "--burst"),
                               capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot listen", r.stderr)


if __name__ == "__main__":
    harness.main()
