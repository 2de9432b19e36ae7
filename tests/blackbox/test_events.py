"""Live events through real HTTP: Server-Sent Events with ids, resuming with Last-Event-ID
without gaps or duplicates, a slow reader told it lagged, keepalives, job logs (followed to
their end), job history and retries."""

import http.client
import json
import os
import sqlite3
import time
import unittest

import harness


def final(frames):
    return [f for f in frames if f.get("event") in ("job.succeeded", "job.failed")]


class EventsTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)

    def tearDown(self):
        self.box.close()

    def start(self, *extra):
        self.box.start(*extra)
        return self.box.wait_for_api()

    def request(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=30)
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.getheader("Content-Type", "").startswith("application/json"):
            return r.status, json.loads(data)
        return r.status, data.decode()

    def submit(self, payload=None, **extra):
        body = dict(kind="kcidb", payload=payload if payload is not None else harness.GOOD,
                    **extra)
        status, job = self.request("POST", "/api/v1/jobs", json.dumps(body))
        self.assertEqual(status, 201, job)
        return job

    def test_every_frame_has_an_id_and_a_resumed_stream_has_no_gap_and_no_duplicate(self):
        self.start()
        first = harness.SseClient(self.box.port, "/api/v1/events")
        self.assertIn("text/event-stream", first.read_head())
        jobs = [self.submit()["id"] for _ in range(20)]
        seen = first.frames(lambda f: len(final(f)) >= 10)
        first.close()  # disconnects part way
        self.assertTrue(all("id" in f for f in seen))
        last = seen[-1]["id"]
        jobs += [self.submit()["id"] for _ in range(30)]  # while nobody listens
        resumed = harness.SseClient(self.box.port, "/api/v1/events", last_event_id=last)
        rest = resumed.frames(lambda f: len(final(seen + f)) >= 50)
        jobs += [self.submit()["id"] for _ in range(10)]  # live again, same connection
        rest += resumed.frames(lambda f: len(final(seen + rest + f)) >= 60)
        resumed.close()
        ids = [int(f["id"]) for f in seen + rest]
        self.assertEqual(ids, sorted(set(ids)), "ids repeat or go backwards")
        # Exactly the store's events, each once, in order: no gap.
        stored = [r[0] for r in self.box.query("SELECT id FROM events ORDER BY id")]
        self.assertEqual(ids, stored[:len(ids)])
        per_job = {}
        for f in seen + rest:
            per_job.setdefault(f["data"]["job"], []).append(f["event"])
        self.assertEqual(sorted(per_job), sorted(jobs))
        for job, events in per_job.items():
            self.assertEqual(events, ["job.queued", "job.running", "job.succeeded"], job)
        # ?after= resumes the same way.
        after = harness.SseClient(self.box.port, "/api/v1/events?after=%d" % stored[-3])
        self.assertEqual([int(f["id"]) for f in after.frames(lambda f: len(f) >= 2)],
                         stored[-2:])
        after.close()

    def test_filters_by_job_kind_queue_and_type(self):
        self.start()
        a = self.submit(queue="alpha")["id"]
        b = self.submit(queue="beta")["id"]
        self.box.wait_for(lambda: self.request("GET", "/api/v1/jobs/%d" % b)[1]["state"] ==
                          "succeeded")
        one = harness.SseClient(self.box.port, "/api/v1/events?job=%d" % a)  # from the job's start
        frames = one.frames(lambda f: len(f) >= 3)
        self.assertEqual([f["event"] for f in frames],
                         ["job.queued", "job.running", "job.succeeded"])
        self.assertTrue(all(f["data"]["job"] == a for f in frames))
        one.close()
        typed = harness.SseClient(self.box.port, "/api/v1/events?after=0&type=job.succeeded&queue=beta")
        frames = typed.frames(lambda f: len(f) >= 1)
        self.assertEqual([(f["event"], f["data"]["job"]) for f in frames], [("job.succeeded", b)])
        typed.close()
        self.assertEqual(self.request("GET", "/api/v1/events?job=x")[0], 400)
        self.assertEqual(self.request("GET", "/api/v1/events?after=-1")[0], 400)
        # A misspelt type is refused, naming the types there are (it used to be a stream
        # that never said anything); every type the README names is taken.
        status, body = self.request("GET", "/api/v1/events?type=job.succeeded,job.suceeded")
        self.assertEqual(status, 400)
        self.assertIn("unknown event type 'job.suceeded'", body["error"]["message"])
        self.assertIn("job.succeeded", body["error"]["message"])
        for t in ("job.failed", "job.log", "task.new", "task.completed", "job.deferred,job.queued"):
            s = harness.SseClient(self.box.port, "/api/v1/events?type=" + t)
            self.assertIn(" 200 ", s.read_head().split("\r\n")[0], t)
            s.close()
        for t in ("nope", "job.", "JOB.FAILED", "task.FAILED", "job.failed%00"):
            self.assertEqual(self.request("GET", "/api/v1/events?type=" + t)[0], 400, t)

    def test_a_slow_reader_is_told_it_lagged_and_resumes_from_its_last_id(self):
        self.start("--sse-buffer", "50")
        slow = harness.SseClient(self.box.port, "/api/v1/events", rcvbuf=4096)
        slow.read_head()
        # It stops reading while 3,000 files make 9,000 events: more than the socket buffers
        # and its 50-event queue hold.
        r = self.box.sluice("demo-data", self.box.spool, "--count", "3000",
                            "--tests-per-file", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.box.wait_for(lambda: self.box.query(
            "SELECT COUNT(*) FROM jobs WHERE state='succeeded'")[0][0] == 3000, 120)
        self.assertEqual(self.request("GET", "/healthz")[0], 200)  # the server is fine
        frames = slow.frames(lambda f: False, timeout=60)  # reads until the server closes
        slow.close()
        self.assertEqual(frames[-1]["event"], "lagged", frames[-1])
        last = frames[-1]["data"]["last_event_id"]
        got = [int(f["id"]) for f in frames[:-1]]
        self.assertEqual(got[-1], last)
        total = self.box.query("SELECT COUNT(*) FROM events")[0][0]
        self.assertLess(len(got), total)
        resumed = harness.SseClient(self.box.port, "/api/v1/events", last_event_id=last)
        rest = resumed.frames(lambda f: len(got) + len(f) >= total)
        resumed.close()
        all_ids = got + [int(f["id"]) for f in rest]
        self.assertEqual(all_ids, [r[0] for r in
                                   self.box.query("SELECT id FROM events ORDER BY id")])

    def test_a_quiet_stream_gets_keepalive_comments(self):
        self.start("--sse-keepalive", "0.3")
        c = harness.SseClient(self.box.port, "/api/v1/events")
        c.read_head()
        time.sleep(1.2)
        c.sock.settimeout(5)
        c._fill()
        c.close()
        self.assertGreaterEqual(c.buf.count(b": keepalive\n\n"), 2, c.buf)

    def test_a_followed_log_streams_until_the_job_ends(self):
        self.start()
        due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        job = self.submit(run_at=due)["id"]
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=30)
        t0 = time.time()
        c.request("GET", "/api/v1/jobs/%d/log?follow=1" % job)
        r = c.getresponse()
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain"))
        text = r.read().decode()  # returns once the server ends the stream
        self.assertGreater(time.time() - t0, 0.5)
        lines = text.splitlines()
        self.assertTrue(lines[0].endswith(" queued"), text)
        self.assertIn("running (attempt 1 of 5)", text)
        self.assertIn('succeeded: {"version":"5.3"', text)
        self.assertEqual(lines[-1], "-- end of log: job %d succeeded --" % job)
        # Without follow: what is there now, the same lines.
        status, again = self.request("GET", "/api/v1/jobs/%d/log" % job)
        self.assertEqual((status, again), (200, text))
        self.assertEqual(self.request("GET", "/api/v1/jobs/999/log")[0], 404)

    def test_job_history_and_retry(self):
        self.start("--max-attempts", "1")
        bad = {"version": {"major": 5, "minor": 3}, "tests": [{"id": "nope"}]}
        job = self.submit(bad)["id"]
        self.box.wait_for(lambda: self.request("GET", "/api/v1/jobs/%d" % job)[1]["state"] ==
                          "failed")
        status, detail = self.request("GET", "/api/v1/jobs/%d" % job)
        self.assertEqual([e["type"] for e in detail["events"]],
                         ["job.queued", "job.running", "job.failed"])
        self.assertEqual(detail["events"][2]["data"]["error"]["code"], "schema_violation")
        status, retried = self.request("POST", "/api/v1/jobs/%d/retry" % job)
        self.assertEqual((status, retried["state"], retried["attempts"]), (200, "queued", 0))
        self.box.wait_for(lambda: len(self.request("GET", "/api/v1/jobs/%d" % job)[1]["events"])
                          >= 7)
        detail = self.request("GET", "/api/v1/jobs/%d" % job)[1]
        self.assertEqual([e["type"] for e in detail["events"]][3:],
                         ["job.log", "job.queued", "job.running", "job.failed"])
        self.assertEqual(detail["attempts"], 1)
        good = self.submit()["id"]
        self.box.wait_for(lambda: self.request("GET", "/api/v1/jobs/%d" % good)[1]["state"] ==
                          "succeeded")
        status, err = self.request("POST", "/api/v1/jobs/%d/retry" % good)
        self.assertEqual((status, err["error"]["code"]), (409, "failed_precondition"))
        self.assertEqual(self.request("POST", "/api/v1/jobs/4242/retry")[0], 404)
        # A spool file's failed job: the file goes back and runs as a new job.
        self.box.drop("broken.json", "{broken")
        self.box.wait_for(lambda: "broken.json" in self.box.listing("failed"))
        fid = self.box.query("SELECT id FROM jobs WHERE name='broken.json'")[0][0]
        status, answer = self.request("POST", "/api/v1/jobs/%d/retry" % fid)
        self.assertEqual(status, 202, answer)
        self.assertIn("retried_at", answer["retried"])
        self.box.wait_for(lambda: len(self.box.query(
            "SELECT id FROM jobs WHERE name='broken.json' AND state='failed'")) == 2)
        # The first job stays in the history, marked, out of the failure counts; its file is
        # the second job's now, and retrying the first again moves nothing.
        second = self.box.query("SELECT MAX(id) FROM jobs WHERE name='broken.json'")[0][0]
        first = self.request("GET", "/api/v1/jobs/%d" % fid)[1]
        self.assertIn("retried_at", first)
        self.assertEqual(first["state"], "failed")
        # The log line goes through the writer after the file is back: on a busy machine the
        # new job may run and fail before it is committed.
        self.box.wait_for(lambda: "retried over the API: broken.json is back in the spool" in
                          self.request("GET", "/api/v1/jobs/%d" % fid)[1]["events"][-1][
                              "data"].get("line", ""), 10, "the retry's log line")
        status, err = self.request("POST", "/api/v1/jobs/%d/retry" % fid)
        self.assertEqual(status, 409, err)
        self.assertIn("retried already", err["error"]["message"])
        codes = dict((f["code"], f["count"]) for f in self.request(
            "GET", "/api/v1/failures")[1]["failures"])
        self.assertEqual(codes.get("invalid_json"), 1, codes)
        status, page = self.request("GET", "/api/v1/jobs?name=broken.json&state=failed&retried=0")
        self.assertEqual([j["id"] for j in page["jobs"]], [second])
        self.assertEqual(self.request("GET", "/api/v1/jobs?retried=maybe")[0], 400)

    def test_retrying_a_whole_code_twice_moves_each_file_once_each_time(self):
        # Files retried by an earlier release (or by hand) leave old failed jobs unmarked whose
        # file name is now another job's: such a job must never take that job's file.
        for i in range(300):
            self.box.drop("bad%03d.json" % i, "{broken %d" % i)
        self.start("--max-attempts", "1")
        failed = lambda n: len(self.box.query(  # and their files in failed/ with reports
            "SELECT id FROM jobs WHERE state='failed'")) == n and len(
            self.box.listing("failed")) == 600
        self.box.wait_for(lambda: failed(300), 60, "300 failures")
        status, answer = self.request("POST", "/api/v1/failures/retry",
                                      json.dumps({"code": "invalid_json"}))
        self.assertEqual((status, answer["retried"], answer["errors"]), (200, 300, []))
        self.box.wait_for(lambda: failed(600), 60, "the 300 failing again")
        codes = dict((f["code"], f["count"]) for f in self.request(
            "GET", "/api/v1/failures")[1]["failures"])
        self.assertEqual(codes, {"invalid_json": 300})  # the first 300 are history now
        status, answer = self.request("GET", "/api/v1/jobs?state=failed&retried=1&limit=1000")
        self.assertEqual(len(answer["jobs"]), 300)
        self.box.stop()
        with sqlite3.connect(self.box.db) as con:  # as a release before retried_at left them
            con.execute("UPDATE jobs SET retried_at = 0")
        open(os.path.join(self.box.dir, "daemon.log"), "w").close()  # forget the old port
        self.start("--max-attempts", "1")
        status, answer = self.request("POST", "/api/v1/failures/retry",
                                      json.dumps({"code": "invalid_json"}))
        self.assertEqual((status, answer["retried"]), (200, 300), answer)
        self.box.wait_for(lambda: failed(900), 60, "the 300 failing a third time")
        time.sleep(1.5)
        per_file = self.box.query("SELECT name, COUNT(*) FROM jobs GROUP BY name")
        self.assertEqual(sorted(set(n for _, n in per_file)), [3], per_file[:5])
        self.assertIn("not in", answer["errors"][0])  # the old jobs: their names' files are not theirs


if __name__ == "__main__":
    harness.main()
