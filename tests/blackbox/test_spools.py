"""Several spools in one daemon, from a config file: a KCIDB spool, an exec spool and a
queuedir, each with its own settings; /api/v1/spools and `sluice stats` show each; the event
stream carries all of them with increasing ids and no duplicate; jobs over HTTP go to the
spool of their kind."""

import http.client
import json
import os
import subprocess
import time
import unittest

import harness


def drop(spool, name, content):
    """As a good producer: a dotfile, then a rename."""
    tmp = os.path.join(spool, "." + name + ".part")
    with open(tmp, "w") as f:
        json.dump(content, f)
    os.rename(tmp, os.path.join(spool, name))


class SpoolsTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()
        d = self.box.dir
        self.kcidb = os.path.join(d, "kcidb")
        self.cmds = os.path.join(d, "cmds")
        self.queue = os.path.join(d, "queue")
        self.conf = os.path.join(d, "sluice.toml")
        os.makedirs(self.kcidb)  # spools must exist (a queuedir is created, as Mozilla's is)
        os.makedirs(self.cmds)
        with open(self.conf, "w") as f:
            f.write("""# one daemon, three spools
database = "sqlite:%s"
port = 0
settle = 0.2

[spool.kernelci]
dir = "%s"
kind = "kcidb"
workers = 2

[spool.commands]
dir = "%s"
kind = "exec"
max_attempts = 2
retry_delay = 0.1
allowed_commands = ["/bin/*"]

[spool.queue]
dir = "%s"
layout = "queuedir"
kind = "exec"
max_retries = 1
retry_time = 0.1
""" % (self.box.db, self.kcidb, self.cmds, self.queue))

    def tearDown(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.box.close()

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body

    def post(self, path, body):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", path, body=json.dumps(body))
        r = c.getresponse()
        out = json.loads(r.read())
        c.close()
        return r.status, out

    def jobs(self):
        try:
            return self.box.query("SELECT id, spool, name, state FROM jobs ORDER BY id")
        except Exception:
            return []

    def test_three_spools_one_daemon(self):
        self.proc = harness.spawn([harness.SLUICE, "serve", "-c", self.conf],
                                  os.path.join(self.box.dir, "daemon.log"))
        self.box.proc = self.proc
        self.port = self.box.wait_for_api()
        status, body = self.get("/api/v1/spools")
        spools = {s["name"]: s for s in json.loads(body)["spools"]}
        self.assertEqual(sorted(spools), ["commands", "kernelci", "queue"])
        self.assertEqual((spools["queue"]["layout"], spools["queue"]["kind"]), ("queuedir", "exec"))
        self.assertEqual(spools["kernelci"]["kind"], "kcidb")

        drop(self.kcidb, "sub.json", harness.GOOD)
        drop(self.cmds, "ok.json", ["/bin/echo", "hi"])
        outside = os.path.join(self.box.dir, "outside.sh")  # not under this spool's /bin/*
        with open(outside, "w") as f:
            f.write("#!/bin/sh\necho escaped\n")
        os.chmod(outside, 0o755)
        drop(self.cmds, "denied.json", [outside])
        tmp = os.path.join(self.queue, "tmp", "1700000000-1-42abcdef")
        with open(tmp, "w") as f:
            json.dump(["/bin/true"], f)
        os.rename(tmp, os.path.join(self.queue, "new", "1700000000-1-42abcdef"))
        status, job = self.post("/api/v1/jobs", {"kind": "exec", "payload": ["/bin/echo", "api"]})
        self.assertEqual(status, 201, job)
        self.assertEqual(self.post("/api/v1/jobs", {"kind": "nope", "payload": {}})[0], 422)

        def settled():
            states = {name: state for _, _, name, state in self.jobs()}
            return len(states) == 5 and all(s in ("succeeded", "failed") for s in states.values())
        self.box.wait_for(settled, 60, "every job of every spool")
        by_name = {name: (spool, state) for _, spool, name, state in self.jobs()}
        self.assertEqual(by_name["sub.json"], (self.kcidb, "succeeded"))
        self.assertEqual(by_name["ok.json"], (self.cmds, "succeeded"))
        self.assertEqual(by_name["denied.json"], (self.cmds, "failed"))
        self.assertEqual(by_name["1700000000-1-42abcdef"], (self.queue, "succeeded"))
        self.assertEqual(by_name[""], ("", "succeeded"))  # the HTTP job ran on the exec spool

        # One event stream for all of them: increasing ids, nothing twice, every job there.
        total = self.box.query("SELECT COUNT(*) FROM events")[0][0]
        client = harness.SseClient(self.port, "/api/v1/events?after=0")
        frames = client.frames(lambda got: len(got) >= total, 10)
        client.close()
        ids = [int(f["id"]) for f in frames]
        jobs_seen = {f["data"]["job"] for f in frames}
        self.assertEqual(len(ids), total)
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual(jobs_seen, {j for j, _, _, _ in self.jobs()})

        stats = self.box.sluice("stats", "--database", "sqlite:" + self.box.db).stdout
        for spool in (self.kcidb, self.cmds, self.queue):
            self.assertIn(spool, stats)
        for spool in (self.kcidb, self.cmds, self.queue):
            r = subprocess.run([harness.SLUICE, "check", "--spool-dir", spool, "--database",
                                "sqlite:" + self.box.db], capture_output=True, text=True)
            expected = 2 if spool == self.cmds else 0  # denied.json is in failed/
            self.assertEqual(r.returncode, expected, r.stdout)
        # By name, from the daemon's config file; --all in one line with prefixed perfdata.
        r = subprocess.run([harness.SLUICE, "check", "--config", self.conf, "--spool", "queue"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertTrue(r.stdout.startswith("SLUICE OK - queue "), r.stdout)
        r = subprocess.run([harness.SLUICE, "check", "--config", self.conf, "--all"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("commands ", r.stdout)
        for label in ("kernelci_pending=", "commands_failed=1;", "queue_in_progress=0;"):
            self.assertIn(label, r.stdout)
        self.assertEqual(r.stdout.count("\n"), 1)
        self.proc.terminate()
        self.assertEqual(self.proc.wait(timeout=60), 0)

    def test_a_spool_where_another_puts_its_files_is_refused(self):
        # Inside another spool's archive/, failed/ or deferred/, or anywhere in a queuedir, a
        # spool would take the other's finished (or deferred, or queued) files as new ones.
        d = self.box.dir
        first = os.path.join(d, "first")
        for layout, inside, ok in (("spool", "archive", False), ("spool", "failed/x", False),
                                   ("spool", "deferred", False), ("queuedir", "new", False),
                                   ("queuedir", "elsewhere/../cur", False),
                                   ("spool", "sub", True)):
            config = os.path.join(d, "apart.toml")
            with open(config, "w") as f:
                f.write('database = "sqlite:%s"\nno_api = true\nburst = true\n'
                        '[spool.a]\ndir = "%s"\nlayout = "%s"\nkind = "exec"\n'
                        '[spool.b]\ndir = "%s"\nkind = "exec"\n'
                        % (os.path.join(d, "apart.db"), first, layout,
                           os.path.join(first, inside)))
            os.makedirs(os.path.join(first, inside), exist_ok=True)
            r = subprocess.run([harness.SLUICE, "serve", "-c", config], capture_output=True,
                               text=True, timeout=60)
            what = (layout, inside, r.stderr)
            if ok:
                self.assertEqual(r.returncode, 0, what)
            else:
                self.assertEqual(r.returncode, 2, what)
                self.assertIn("where the spool [spool.a] puts its files", r.stderr, what)

    def test_the_reading_budget_is_the_daemons_not_a_spools(self):
        # One budget bounds what every spool's workers read at once: a spool section may not
        # set it (it would be ignored), the daemon's part of the file may.
        with open(self.conf) as f:
            text = f.read()
        with open(self.conf, "w") as f:
            f.write(text.replace('kind = "kcidb"\n', 'kind = "kcidb"\nmax_reading_bytes = 1000\n'))
        r = subprocess.run([harness.SLUICE, "serve", "-c", self.conf, "--burst"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("[spool.kernelci]: max_reading_bytes is one budget for every spool", r.stderr)
        with open(self.conf, "w") as f:
            f.write(text.replace("settle = 0.2\n", "settle = 0.2\nmax_reading_bytes = 1000\n")
                    .replace('layout = "queuedir"', 'layout = "spool"'))
        os.makedirs(self.queue)
        drop(self.kcidb, "a.json", {"version": {"major": 4, "minor": 0}})
        drop(self.kcidb, "b.json", {"version": {"major": 4, "minor": 0}, "checkouts": [
            {"id": "o:c%d" % i, "origin": "o"} for i in range(100)]})  # over the budget: alone
        r = subprocess.run([harness.SLUICE, "serve", "-c", self.conf, "--burst"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.kcidb, "archive"))),
                         ["a.json", "b.json"])


if __name__ == "__main__":
    harness.main()
