"""Hostile neighbours on the HTTP side: more event readers than the budget, readers that never
read, and a crowd of connections at the descriptor limit. The daemon answers 503 beyond its
budget, keeps its memory bounded, does not spin, does not flood its log, and keeps answering
the connections it has."""

import http.client
import json
import os
import socket
import subprocess
import time
import unittest

import harness


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HostileClientsTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.box.close()

    def get(self, path, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def call(self, method, path, host, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        c.putrequest(method, path, skip_host=True)
        c.putheader("Host", host)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        data = json.dumps(body).encode() if body is not None else b""
        if body is not None:
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(len(data)))
        c.endheaders(data if body is not None else None)
        r = c.getresponse()
        answer = r.read()
        c.close()
        return r.status, answer

    def test_a_page_that_rebinds_its_name_to_loopback_reaches_nothing(self):
        # DNS rebinding: a page of evil.example points its name at 127.0.0.1; its calls are then
        # same-origin for the browser, with Host and Origin both evil.example.
        self.box.start("--kind", "exec")
        self.box.wait_for_api()
        port = self.box.port
        marker = os.path.join(self.box.dir, "ran")
        evil = "evil.example:%d" % port
        job = {"kind": "exec", "payload": ["/usr/bin/touch", marker]}
        for method, path, body in [("POST", "/api/v1/jobs", job), ("GET", "/api/v1/jobs", None),
                                   ("GET", "/api/v1/events", None),
                                   ("POST", "/api/v1/tasks", {"tasks": []})]:
            for host in (evil, "localhost.evil.example", "[::2]:%d" % port, "0.0.0.0", "10.0.0.1"):
                status, answer = self.call(method, path, host, body,
                                           {"Origin": "http://" + host})
                self.assertEqual(status, 421, (method, path, host))
                error = json.loads(answer)["error"]
                self.assertEqual(error["code"], "misdirected_request")
                self.assertIn("--api-token", error["message"])
        self.assertEqual(self.call("GET", "/healthz", evil)[0], 200)
        # Called by a loopback name, as curl, a script or the dashboard do, it answers.
        for host in ("127.0.0.1:%d" % port, "localhost:%d" % port, "LOCALHOST.", "[::1]:%d" % port,
                     "dash.localhost:%d" % port, "127.3.2.1"):
            self.assertEqual(self.call("GET", "/api/v1/jobs", host)[0], 200, host)
        status, _ = self.call("POST", "/api/v1/jobs", "localhost:%d" % port, job,
                              {"Origin": "http://localhost:%d" % port})
        self.assertEqual(status, 201)
        self.box.wait_for(lambda: os.path.exists(marker), what="the loopback-named job ran")
        self.assertEqual(self.box.query("SELECT COUNT(*) FROM jobs"), [(1,)])
        self.box.stop()
        # With a token any name may reach it (a proxy's public name): the token guards it.
        self.box.close()
        self.box = harness.Sandbox(api=True)
        self.box.start("--kind", "exec", "--api-token", "t0k")
        self.box.wait_for_api()
        status, _ = self.call("GET", "/api/v1/jobs", "sluice.example.org",
                              headers={"Authorization": "Bearer t0k"})
        self.assertEqual(status, 200)
        self.assertEqual(self.call("GET", "/api/v1/jobs", "sluice.example.org")[0], 401)

    def test_event_readers_beyond_the_budget_get_503_and_a_freed_slot_is_reused(self):
        self.box.start("--max-sse-clients", "5", "--kind", "exec")
        self.box.wait_for_api()
        self.box.drop("a.json", json.dumps(["/bin/sleep", "30"]))
        self.box.wait_for(lambda: self.get("/api/v1/jobs/1")[0] == 200, what="job 1")
        readers = [harness.SseClient(self.box.port, "/api/v1/events") for _ in range(4)]
        # A followed log counts too.
        readers.append(harness.SseClient(self.box.port, "/api/v1/jobs/1/log?follow=1"))
        for r in readers:
            self.assertIn("200 OK", r.read_head())
        status, body = self.get("/api/v1/events")
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["error"]["code"], "too_many_streams")
        readers[0].close()
        # A slot comes back when its connection ends (the server sees the hang-up).
        deadline = time.time() + 10
        while True:
            extra = harness.SseClient(self.box.port, "/api/v1/events")
            head = extra.read_head()
            extra.close()
            if "200 OK" in head:
                break
            self.assertLess(time.time(), deadline, head)
            time.sleep(0.1)
        for r in readers[1:]:
            r.close()

    def test_readers_that_never_read_keep_memory_bounded(self):
        n = 300
        self.box.start("--max-sse-clients", str(n), "--kind", "exec", "--max-workers", "4",
                       "--http-timeout", "120")
        self.box.wait_for_api()
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", self.box.port))
            s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.socks.append(s)  # never read from
        time.sleep(0.5)
        base = rss_kb(self.box.proc.pid)
        # Events flow: 400 jobs, each with 20 log lines of 200 bytes.
        line = "x" * 200
        for i in range(400):
            self.box.drop("j%03d.json" % i, json.dumps(
                ["/bin/sh", "-c", "for i in $(seq 20); do echo %s; done" % line]))
        self.box.wait_for(lambda: len(self.box.listing("archive")) == 400, 120, "the jobs")
        grown = rss_kb(self.box.proc.pid) - base
        # 10,000+ events of ~300 bytes each, 300 readers: copied per reader that would be
        # about a gigabyte; shared, it is the events once plus pointers.
        print("RSS %d kB with %d idle readers, grew %d kB while 8,800 events flowed" % (
            base, n, grown))
        self.assertLess(grown, 60 * 1024, "RSS grew by %d kB" % grown)
        self.assertEqual(self.get("/healthz")[0], 200)

    def test_bodies_in_flight_are_bounded_and_beyond_the_budget_answered_503(self):
        self.box.start("--max-body-bytes", "1048576", "--max-body-memory", "2097152",
                       "--kind", "exec")
        self.box.wait_for_api()
        head = ("POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n")
        slow = []
        for _ in range(2):  # two uploads of 1 MB that trickle: the budget of 2 MB is taken
            s = socket.create_connection(("127.0.0.1", self.box.port))
            s.sendall(head.encode() + b"[" * 1000)
            slow.append(s)
            self.socks.append(s)
        time.sleep(0.3)
        third = socket.create_connection(("127.0.0.1", self.box.port))
        self.socks.append(third)
        third.sendall(head.encode())
        third.settimeout(10)
        answer = third.recv(65536).decode()
        self.assertIn("503", answer.split("\r\n")[0])
        self.assertIn('"busy"', answer)
        self.assertIn("Retry-After: 1", answer)
        # One that asks to be told to go on is told 503 instead, before it sends its body.
        fourth = socket.create_connection(("127.0.0.1", self.box.port))
        self.socks.append(fourth)
        fourth.sendall(head.replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n").encode())
        fourth.settimeout(10)
        answer = fourth.recv(65536).decode()
        self.assertTrue(answer.startswith("HTTP/1.1 503 "), answer)
        # A request without a body is still answered, and a slot comes back when an upload ends.
        self.assertEqual(self.get("/healthz")[0], 200)
        slow[0].sendall(b"]" * 1000 + b" " * (1000000 - 2000))
        slow[0].settimeout(10)
        self.assertIn(" 400 ", slow[0].recv(65536).decode().split("\r\n")[0])
        c = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        c.request("POST", "/api/v1/jobs", body=json.dumps({"kind": "exec", "payload": ["/bin/true"]}))
        self.assertEqual(c.getresponse().status, 201)
        c.close()

    def test_at_the_descriptor_limit_accepts_pause_and_open_connections_are_answered(self):
        # A hard limit of 64 descriptors: raising the soft limit cannot help.
        args = ["prlimit", "--nofile=64:64"] + self.box.args("--http-timeout", "120")
        with open(os.path.join(self.box.dir, "daemon.log"), "ab") as log:
            self.box.proc = subprocess.Popen(args, stdout=log, stderr=log)
        self.box.wait_for_api()
        keep = http.client.HTTPConnection("127.0.0.1", self.box.port, timeout=10)
        keep.request("GET", "/healthz")
        self.assertEqual(keep.getresponse().read(), b'{"status":"ok"}')
        for _ in range(120):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.box.port))
            except BlockingIOError:
                pass
            self.socks.append(s)
        time.sleep(1)
        cpu0 = cpu_seconds(self.box.proc.pid)
        time.sleep(3)
        used = cpu_seconds(self.box.proc.pid) - cpu0
        self.assertLess(used, 0.6, "the daemon spun %.2f s of CPU in 3 s" % used)
        # The connection it already had is still answered.
        keep.request("GET", "/healthz")
        self.assertEqual(keep.getresponse().read(), b'{"status":"ok"}')
        keep.close()
        text = self.box.daemon_log()
        refused = text.count("cannot accept connections")
        self.assertGreater(refused, 0, text[-2000:])
        self.assertLess(refused, 40, "%d log lines" % refused)
        # When the crowd leaves, new connections are taken again.
        for s in self.socks:
            s.close()
        self.socks = []
        deadline = time.time() + 20
        while True:
            try:
                if self.get("/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.time(), deadline)
            time.sleep(0.2)


if __name__ == "__main__":
    harness.main()
