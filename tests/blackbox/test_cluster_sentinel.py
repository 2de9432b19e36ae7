"""A cluster on Redis Sentinel: a master, a replica and three sentinels of the test's own; a
`serve` and two workers find the master through the sentinels. The master is killed (-9)
mid-run, without waiting for the replica: the cluster follows the new master and every job
ends once, what the old master had not passed on being published again from PostgreSQL."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from test_cluster import Cluster, log_of


class Redis:
    def __init__(self, root, name, conf, sentinel=False):
        home = os.path.join(root, name)
        os.makedirs(home)
        path = os.path.join(home, "redis.conf")
        with open(path, "w") as f:
            f.write(conf + "dir %s\nlogfile %s/redis.log\n" % (home, home))
        args = ["redis-server", path] + (["--sentinel"] if sentinel else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def ask(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), "--raw"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=10)
    return r.stdout.splitlines() if r.returncode == 0 else []


class SentinelClusterTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="sluice-sentinel-")
        self.servers = []
        self.c = None

    def tearDown(self):
        if self.c is not None:
            self.c.close()
        for s in self.servers:
            s.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def start_redis(self):
        common = 'bind 127.0.0.1\nprotected-mode no\nsave ""\nappendonly yes\n'
        self.master_port = harness.free_port()
        self.replica_port = harness.free_port()
        self.master = Redis(self.root, "master", common + "port %d\n" % self.master_port)
        self.servers.append(self.master)
        self.servers.append(Redis(self.root, "replica", common + "port %d\nreplicaof 127.0.0.1 %d\n"
                                  % (self.replica_port, self.master_port)))
        self.sentinels = []
        for i in range(3):
            port = harness.free_port()
            self.sentinels.append(port)
            self.servers.append(Redis(self.root, "sentinel%d" % i, (
                "bind 127.0.0.1\nprotected-mode no\nport %d\n"
                "sentinel monitor m 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds m 1000\n"
                "sentinel failover-timeout m 5000\n") % (port, self.master_port), sentinel=True))

        def ready(port):
            info = ask(port, "SENTINEL", "MASTER", "m")
            fields = dict(zip(info[::2], info[1::2]))
            return fields.get("num-other-sentinels") == "2" and fields.get("num-slaves") == "1"
        deadline = time.time() + 60
        while not all(ready(p) for p in self.sentinels):
            self.assertLess(time.time(), deadline, "the sentinels did not find each other")
            time.sleep(0.2)

    def master_at(self):
        addr = ask(self.sentinels[0], "SENTINEL", "get-master-addr-by-name", "m")
        return int(addr[1]) if len(addr) == 2 else 0

    def test_the_cluster_follows_a_failover_and_loses_no_job(self):
        self.start_redis()
        url = "redis+sentinel://%s/m/0" % ",".join("127.0.0.1:%d" % p for p in self.sentinels)
        self.c = Cluster("sentinel")
        self.c.url = url
        self.c.start_serve()  # kcidb only: the exec jobs are the workers'
        for _ in range(2):
            self.c.worker("--kind", "exec")
        first = [self.c.submit(["/bin/sh", "-c", "sleep 0.02; echo %d" % i]) for i in range(100)]
        self.master.kill()  # not waiting for the replica: what it had not got is lost
        killed = time.time()
        second = [self.c.submit(["/bin/echo", str(i)]) for i in range(100)]
        deadline = time.time() + 60
        while self.master_at() != self.replica_port:
            self.assertLess(time.time(), deadline, "no failover")
            time.sleep(0.2)
        self.c.wait_all_ended(len(first) + len(second), timeout=120)
        self.assertEqual(set(self.c.states().values()), {"succeeded"})
        self.assertEqual(self.c.final_events(), {i: 1 for i in first + second})
        logs = self.c.serve.daemon_log() + "".join(log_of(l) for _, l in self.c.workers)
        self.assertIn("Redis master m is at 127.0.0.1:%d (was 127.0.0.1:%d)" % (
            self.replica_port, self.master_port), logs)
        print("failover: all %d jobs ended %.1f s after the master was killed" % (
            len(first) + len(second), time.time() - killed))


if __name__ == "__main__":
    harness.main()
