"""The exec handler's walls, tried from the spool: allowlist bypasses (.., symlinks, globs
across '/', bare names), the dynamic loader's variables, secrets in the daemon's environment and
command line, and commands left running by a daemon killed with -9."""

import http.client
import json
import os
import signal
import subprocess
import time
import unittest

import harness


def write_script(path, text):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + text + "\n")
    os.chmod(path, 0o755)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def reaper_of(pid):
    """The reaper helper forked by daemon `pid`."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if name == "sluice-reaper" and ppid == pid:
                return int(entry)
    return None


class ExecWallsTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()
        self.allowed = os.path.join(self.box.dir, "allowed")
        os.makedirs(os.path.join(self.allowed, "sub"))
        write_script(os.path.join(self.allowed, "ok.sh"), "echo ok")
        write_script(os.path.join(self.allowed, "sub", "deeper.sh"), "echo deeper")
        write_script(os.path.join(self.box.dir, "evil.sh"), "echo escaped")

    def tearDown(self):
        self.box.close()

    def outcomes(self):
        return {name: (state, code) for name, state, code in self.box.query(
            "SELECT name, state, error_code FROM jobs")}

    def test_the_allowlist_cannot_be_bypassed(self):
        a = self.allowed
        os.symlink(os.path.join(self.box.dir, "evil.sh"), os.path.join(self.box.spool, "link.sh"))
        cases = {
            "dots.json": [a + "/../evil.sh"],
            "deep-dots.json": [a + "/sub/../../evil.sh"],
            "climb.json": [a + "/../../../../../../bin/sh", "-c", "echo escaped"],
            "across-slash.json": [a + "/sub/deeper.sh"],
            "bare.json": ["sh", "-c", "echo escaped"],
            "link.json": [os.path.join(self.box.spool, "link.sh")],
            "ok.json": [a + "/ok.sh"],
            "ok-dots.json": [a + "/sub/../ok.sh"],
        }
        for name, argv in cases.items():
            self.box.drop(name, argv)
        r = self.box.burst("--kind", "exec", "--allowed-commands", a + "/*", "--max-attempts", "1")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        got = self.outcomes()
        for name in cases:
            if name.startswith("ok"):
                self.assertEqual(got[name], ("succeeded", None), name)
            else:
                self.assertEqual(got[name], ("failed", "command_not_allowed"), name)
        output = [json.loads(d)["line"] for (d,) in self.box.query(
            "SELECT data FROM events WHERE type = 'job.log'")]
        self.assertNotIn("escaped", output)
        self.assertNotIn("deeper", output)
        self.assertEqual(output.count("ok"), 2)

    def test_a_job_sets_only_allowed_variables_and_never_the_loaders(self):
        so = os.path.join(self.box.spool, "evil.so")
        with open(so, "w") as f:
            f.write("not a library")
        env_cmd = ["/usr/bin/env"]
        self.box.drop("preload.json", {"argv": env_cmd, "env": {"LD_PRELOAD": so}})
        self.box.drop("library.json", {"argv": env_cmd, "env": {"LD_LIBRARY_PATH": "/tmp"}})
        self.box.drop("gconv.json", {"argv": env_cmd, "env": {"GCONV_PATH": "/tmp"}})
        self.box.drop("unlisted.json", {"argv": env_cmd, "env": {"OTHER": "x"}})
        self.box.drop("listed.json", {"argv": env_cmd, "env": {"FOO_MODE": "fast"}})
        r = self.box.burst("--kind", "exec", "--allowed-env", "FOO_*,LD_*", "--max-attempts", "1")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        got = self.outcomes()
        for name in ("preload.json", "library.json", "gconv.json", "unlisted.json"):
            self.assertEqual(got[name], ("failed", "env_not_allowed"), name)
        self.assertEqual(got["listed.json"], ("succeeded", None))
        lines = [json.loads(d)["line"] for (d,) in self.box.query(
            "SELECT e.data FROM events e JOIN jobs j ON j.id = e.job_id "
            "WHERE j.name = 'listed.json' AND e.type = 'job.log'")]
        self.assertIn("FOO_MODE=fast", lines)

    def test_commands_never_see_the_daemons_secrets(self):
        token_file = os.path.join(self.box.dir, "token")
        with open(token_file, "w") as f:
            f.write("file-token-123\n")
        os.chmod(token_file, 0o600)
        env = dict(os.environ, SLUICE_API_TOKEN="api-secret-1", SLUICE_PUBLISH_TOKEN="pub-secret-2",
                   STORAGE_TOKEN="storage-secret-3", STORAGE_BASE_URL="http://127.0.0.1:9",
                   PGPASSWORD="pg-secret-4", SHARED_THING="passed-5")
        self.box.api = True
        self.box.start("--kind", "exec", "--api-token", "cmdline-secret-6", "--pass-env",
                       "SHARED_THING", env=env)
        port = self.box.wait_for_api()
        with open("/proc/%d/cmdline" % self.box.proc.pid, "rb") as f:
            self.assertNotIn(b"cmdline-secret-6", f.read())
        self.box.drop("env.json", ["/usr/bin/env"])
        self.box.wait_for(lambda: self.box.listing("archive") == ["env.json"], 30, "the job")
        log = "\n".join(json.loads(d)["line"] for (d,) in self.box.query(
            "SELECT data FROM events WHERE type = 'job.log'"))
        for secret in ("api-secret-1", "pub-secret-2", "storage-secret-3", "pg-secret-4",
                       "cmdline-secret-6"):
            self.assertNotIn(secret, log)
        self.assertIn("SHARED_THING=passed-5", log)
        self.assertIn("PATH=", log)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/api/v1/jobs", headers={"Authorization": "Bearer cmdline-secret-6"})
        self.assertEqual(c.getresponse().status, 200)
        c.close()
        self.box.stop()
        os.truncate(os.path.join(self.box.dir, "daemon.log"), 0)
        # The token from a file.
        self.box.start("--kind", "exec", "--api-token-file", token_file)
        port = self.box.wait_for_api()
        for token, status in (("file-token-123", 200), ("api-secret-1", 401)):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/api/v1/jobs", headers={"Authorization": "Bearer " + token})
            self.assertEqual(c.getresponse().status, status)
            c.close()


class OrphansTest(unittest.TestCase):
    """A command that starts a child and holds a lock: two copies at once would see it held."""

    def setUp(self):
        self.box = harness.Sandbox()
        self.q = os.path.join(self.box.dir, "q")
        for sub in ("tmp", "new", "cur", "logs", "dead"):
            os.makedirs(os.path.join(self.q, sub))
        self.out = os.path.join(self.box.dir, "out")
        self.lock = os.path.join(self.box.dir, "lock")
        self.pids = os.path.join(self.box.dir, "pids")
        self.script = os.path.join(self.box.dir, "job.sh")
        write_script(self.script, (
            "exec 9>%s\n"
            "if ! flock -n 9; then echo DOUBLE >> %s; exit 1; fi\n"
            "echo start >> %s\n"
            "sleep 300 &\n"
            "echo $! >> %s\n"
            "wait") % (self.lock, self.out, self.out, self.pids))
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.child_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.box.close()

    def runner(self):
        log = open(os.path.join(self.box.dir, "runner.log"), "ab")
        self.proc = subprocess.Popen([harness.SLUICE, "command-runner", self.q, "-t", "0",
                                      "--max-retries", "5"], stdout=log, stderr=log)
        log.close()
        return self.proc

    def enqueue(self):
        tmp = os.path.join(self.q, "tmp", "1700000000-1-aaaa")
        with open(tmp, "w") as f:
            json.dump([self.script], f)
        os.rename(tmp, os.path.join(self.q, "new", "1700000000-1-aaaa"))

    def wait(self, pred, what, timeout=20):
        deadline = time.time() + timeout
        while not pred():
            if time.time() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)

    def read(self, path):
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.read()

    def started(self):
        return self.read(self.out).count("start")

    def child_pids(self):
        # Only whole lines: the shell creates the file before it writes the pid.
        return [int(line) for line in self.read(self.pids).split("\n")[:-1]]

    def wait_for_child(self):
        self.wait(lambda: self.child_pids(), "the command to start its child")
        return self.child_pids()[-1]

    def test_commands_die_with_a_runner_killed_by_sigkill(self):
        self.runner()
        self.enqueue()
        child = self.wait_for_child()
        self.assertTrue(alive(child))
        self.proc.kill()  # kill -9: no chance to stop its commands
        self.proc.wait()
        self.wait(lambda: not alive(child), "the command's child to die", 10)

    def test_a_restart_kills_what_survived_before_running_the_job_again(self):
        self.runner()
        self.enqueue()
        child = self.wait_for_child()
        # The runner and its reaper together (pkill -9 sluice): only the command itself dies
        # (parent-death signal); its child, holding the lock, lives on.
        reaper = reaper_of(self.proc.pid)
        self.assertIsNotNone(reaper)
        os.kill(reaper, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()
        time.sleep(0.5)
        self.assertTrue(alive(child), "the orphan should have outlived both")
        self.runner()
        self.wait(lambda: self.started() == 2, "the job to run again")
        self.assertFalse(alive(child))
        self.assertNotIn("DOUBLE", self.read(self.out))
        with open(os.path.join(self.box.dir, "runner.log")) as f:
            self.assertIn("killed 1 processes the previous daemon", f.read())


if __name__ == "__main__":
    harness.main()
