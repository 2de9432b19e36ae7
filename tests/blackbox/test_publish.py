"""The publish handler (pulse_publisher's jobs) against a real local HTTP receiver: every
event arrives exactly once even while the receiver answers 500 for a while, in batches of at
most 50, with the configured headers and token; skipped routing keys never arrive."""

import http.server
import json
import os
import threading
import time
import unittest

import harness


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.failing_until = 0  # answer 500 before this time
        self.fail_every = 0     # and every Nth request (0: never)
        self.requests = 0
        self.events = []
        self.batches = []
        self.headers_seen = []


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        with srv.lock:
            srv.requests += 1
            fail = time.time() < srv.failing_until or (
                srv.fail_every and srv.requests % srv.fail_every == 0)
            if not fail:
                batch = json.loads(body)
                srv.batches.append(len(batch))
                srv.events.extend(batch)
                srv.headers_seen.append(dict(self.headers))
        self.send_response(500 if fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class PublishTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.rx = Receiver()
        threading.Thread(target=self.rx.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/events" % self.rx.server_address[1]

    def tearDown(self):
        self.rx.shutdown()
        self.box.close()

    def start(self, *extra):
        self.box.start("--kind", "publish", "--publish-url", self.url, "--max-attempts", "50",
                       "--retry-delay", "0.1", "--retry-max-delay", "0.3", *extra)
        self.box.wait_for_api()

    def states(self):
        return dict(self.box.query("SELECT name, state FROM jobs"))

    def test_every_event_once_through_500s(self):
        self.rx.failing_until = time.time() + 2
        self.rx.fail_every = 3
        self.start("--publish-header", "X-Source: sluice-test", "--publish-token", "tok",
                   "--publish-skip", "build\\.skip\\..*")
        expected = []
        for f in range(10):
            events = []
            for i in range(120):
                key = "build.skip.x" if i % 10 == 0 else "build.%d" % f
                events.append({"routing_key": key, "id": "%d-%d" % (f, i)})
                if i % 10:
                    expected.append("%d-%d" % (f, i))
            self.box.drop("events%02d.json" % f, events)
        self.box.drop("single.json", {"routing_key": "one", "id": "single"})
        expected.append("single")
        self.box.drop("broken.json", "[1, 2")
        self.box.wait_for(lambda: len(self.states()) == 12 and
                          all(s in ("succeeded", "failed") for s in self.states().values()),
                          60, "every job to end")
        states = self.states()
        self.assertEqual(states.pop("broken.json"), "failed")
        self.assertEqual(set(states.values()), {"succeeded"})
        ids = [e["id"] for e in self.rx.events]
        self.assertEqual(sorted(ids), sorted(expected))  # each once, none skipped that should not be
        self.assertTrue(all(n <= 50 for n in self.rx.batches))
        self.assertTrue(all(h["X-Source"] == "sluice-test" and h["Authorization"] == "Bearer tok"
                            for h in self.rx.headers_seen))
        keys = [h["Idempotency-Key"] for h in self.rx.headers_seen]
        self.assertEqual(len(keys), len(set(keys)))
        retried = self.box.query("SELECT COUNT(*) FROM jobs WHERE attempts > 1")[0][0]
        self.assertGreater(retried, 0)  # the 500s did make jobs retry

    def test_password_in_url_not_in_errors(self):
        self.url = "http://user:url-pw-31@127.0.0.1:1/events"  # nothing listens on port 1
        self.start()
        with open("/proc/%d/cmdline" % self.box.proc.pid, "rb") as f:
            self.assertNotIn(b"url-pw-31", f.read())
        self.box.drop("e.json", [{"routing_key": "k", "id": "e"}])
        self.box.wait_for(lambda: self.box.query(
            "SELECT COUNT(*) FROM jobs WHERE attempts >= 2")[0][0] == 1, 30, "a retry")
        why = self.box.query("SELECT error_message FROM jobs")[0][0]
        self.assertIn("cannot reach http://user@127.0.0.1:1/events", why)
        self.assertNotIn("url-pw-31", self.box.daemon_log())

    def test_skip_regex_is_searched_as_pulse_publisher_does(self):
        # pulse_publisher's own pattern, re.search'ed in buildbot's "event" keys.
        self.start("--publish-skip", r"^build\.\S+\.\d+\.step\.")
        self.box.drop("bb.json", [{"event": "build.linux64.3.step.started", "id": "skip"},
                                  {"event": "build.linux64.3.finished", "id": "keep"},
                                  {"routing_key": "x.build.a.1.step.y", "id": "keep2"}])
        self.box.wait_for(lambda: self.states().get("bb.json") == "succeeded", 30, "the job")
        self.assertEqual(sorted(e["id"] for e in self.rx.events), ["keep", "keep2"])


if __name__ == "__main__":
    harness.main()
