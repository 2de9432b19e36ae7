"""King Arthur's items list: `--items-redis` pushes each task's new items, as JSON (or as
arthurd's pickles), to a Redis list, each exactly once: across runs, clean restarts, Redis
being down while a run finishes, and kill -9 between the store's commit and the push."""

import json
import os
import pickle
import signal
import socket
import time
import unittest
import urllib.parse

import harness
from test_tasks import commit, git


def lrange_bytes(url, key):
    """LRANGE key 0 -1 over a socket, each entry's bytes as they are (redis-cli would print
    a pickle as text)."""
    u = urllib.parse.urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        args = [b"LRANGE", key.encode(), b"0", b"-1"]
        s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        f = s.makefile("rb")
        head = f.readline()
        if not head.startswith(b"*"):
            raise AssertionError("LRANGE: %r" % head)
        out = []
        for _ in range(int(head[1:])):
            size = int(f.readline()[1:])
            out.append(f.read(size + 2)[:-2])
        return out


class ItemsRedisTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.repo = os.path.join(self.box.dir, "repo")
        os.makedirs(self.repo)
        git(self.repo, "init", "-q", "-b", "main")
        for i in range(5):
            commit(self.repo, "a.txt", "line %d\n" % i, "commit %d" % i)
        self.redis = None

    def tearDown(self):
        self.box.close()
        if self.redis:
            self.redis.close()

    def start(self, url, key, *extra):
        log = os.path.join(self.box.dir, "daemon.log")
        if os.path.exists(log):
            with open(log) as old, open(log + ".before", "a") as keep:
                keep.write(old.read())
            os.unlink(log)
        self.box.start("--archive-path", os.path.join(self.box.dir, "archive"),
                       "--items-redis", url, "--items-key", key, "--task-retry-delay", "0.2",
                       *extra)
        self.api = "http://127.0.0.1:%d" % self.box.wait_for_api()

    def add_task(self, task_id, delay):
        import urllib.request
        body = json.dumps({"tasks": [{
            "task_id": task_id, "backend": "git", "category": "commit",
            "backend_args": {"uri": self.repo, "from_date": "2000-01-01"},
            "scheduler": {"delay": delay}}]}).encode()
        req = urllib.request.Request(self.api + "/add", body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            self.assertEqual(resp.status, 200)

    def stored(self, task_id):
        return [json.loads(r[0]) for r in self.box.query(
            "SELECT data FROM items WHERE task_id=? ORDER BY seq", task_id)]

    def listed(self, url, key):
        return [json.loads(line) for line in harness.redis_cli(url, "LRANGE", key, 0, -1)]

    def test_each_item_once_across_runs_and_restarts(self):
        url = harness.redis_url()
        key = "items-%d-%d" % (os.getpid(), time.time_ns() % 10**9)
        self.start(url, key)
        self.add_task("repo", delay=1)
        self.box.wait_for(lambda: len(self.listed(url, key)) == 5, 30, "5 items in the list")
        for i in range(3):
            commit(self.repo, "b.txt", "more %d\n" % i, "later %d" % i)
        self.box.wait_for(lambda: len(self.listed(url, key)) == 8, 30, "8 items in the list")
        self.box.stop()
        self.start(url, key)
        time.sleep(2.5)  # two more runs, nothing new
        listed = self.listed(url, key)
        self.assertEqual(len(listed), 8)
        self.assertEqual(listed, self.stored("repo"))
        self.assertEqual(len({item["uuid"] for item in listed}), 8)
        self.assertEqual(listed[0]["backend_name"], "Git")  # Perceval's item, as stored

    def test_pickles_as_arthurd_pushes_them(self):
        # What Arthur's own Arthur.items() and GrimoireLab's feeder do with the list.
        url = harness.redis_url()
        key = "pickled-%d-%d" % (os.getpid(), time.time_ns() % 10**9)
        self.start(url, key, "--items-format", "pickle")
        self.add_task("repo", delay=3600)
        self.box.wait_for(lambda: len(lrange_bytes(url, key)) == 5, 30, "5 items in the list")
        items = [pickle.loads(raw) for raw in lrange_bytes(url, key)]
        self.assertEqual(items, self.stored("repo"))
        self.assertEqual(items[0]["data"]["message"], "commit 0")
        self.assertIsInstance(items[0]["updated_on"], float)
        self.assertIsNone(items[0]["classified_fields_filtered"])

    def test_redis_down_then_kill_9_loses_and_doubles_nothing(self):
        self.redis = harness.RedisServer()
        url, key = self.redis.url, "items"
        self.start(url, key)
        self.add_task("repo", delay=1)
        self.box.wait_for(lambda: len(self.redis.cli("LRANGE", key, 0, -1)) == 5, 30,
                          "5 items in the list")
        self.redis.stop()
        for i in range(4):
            commit(self.repo, "c.txt", "down %d\n" % i, "while Redis is down %d" % i)
        self.box.wait_for(lambda: len(self.stored("repo")) == 9, 30, "9 items in the store")
        self.box.wait_for(lambda: "trying again every second" in self.box.daemon_log(), 10,
                          "the export failure in the log")
        # Dies with 4 items committed and not pushed.
        self.box.stop(signal.SIGKILL)
        self.redis.start()
        self.start(url, key)
        self.box.wait_for(lambda: len(self.redis.cli("LRANGE", key, 0, -1)) >= 9, 30,
                          "9 items in the list")
        time.sleep(2.5)
        listed = [json.loads(line) for line in self.redis.cli("LRANGE", key, 0, -1)]
        self.assertEqual(len(listed), 9)
        self.assertEqual(listed, self.stored("repo"))

    def test_a_redis_that_cannot_be_reached_stops_the_start(self):
        port = harness.free_port()
        r = self.box.sluice("serve", "--spool-dir", self.box.spool, "--no-api",
                            "--database", "sqlite:" + self.box.db,
                            "--items-redis", "redis://:hush-hush-5@127.0.0.1:%d" % port)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--items-redis", r.stderr)
        self.assertIn("host 127.0.0.1 port %d" % port, r.stderr)
        self.assertNotIn("hush-hush-5", r.stderr)


if __name__ == "__main__":
    harness.main()
