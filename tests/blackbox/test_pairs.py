"""Socorro's JSON/dump pairs: x.json is a job only once x.dump is there too. 1,000 pairs whose
halves land in random order at random delays each run once with both files; a JSON whose
dump never comes fails after the pair timeout; both halves leave the spool together."""

import json
import os
import random
import subprocess
import threading
import time
import unittest

import harness


class PairsTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()
        self.ran = os.path.join(self.box.dir, "ran.txt")
        # Each run appends what it read from both files (shell builtins only: fast).
        check = ('read -r a < "$1"; read -r b < "$2"; '
                 '[ -n "$a" ] && [ -n "$b" ] && echo "$a|$b" >> %s' % self.ran)
        self.command = json.dumps(["/bin/sh", "-c", check, "sh", "{json}", "{dump}"])

    def tearDown(self):
        self.box.close()

    def start(self, *extra):
        self.box.start("--kind", "exec", "--command", self.command, "--companions", ".dump",
                       "--max-workers", "4", *extra)
        self.box.wait_for(lambda: "watching" in self.box.daemon_log(), 30, "the daemon")

    def write(self, name, data, delay):
        time.sleep(delay)
        self.box.drop(name, data)

    def states(self):
        try:
            return dict(self.box.query("SELECT name, state FROM jobs"))
        except Exception:  # the daemon has not created its tables yet
            return {}

    def test_thousand_pairs_in_random_order(self):
        self.start("--pair-timeout", "60")
        rng = random.Random(7)
        halves = []
        for i in range(1000):
            crash = "crash%04d" % i
            halves.append((crash + ".json", json.dumps({"crash": crash})))
            halves.append((crash + ".dump", "dump of " + crash))
        rng.shuffle(halves)
        writers = []
        for k in range(8):  # 8 producers, each at its own pace
            share = halves[k::8]
            delays = [rng.random() * 0.004 for _ in share]
            writers.append(threading.Thread(target=lambda s=share, d=delays: [
                self.write(n, data, dl) for (n, data), dl in zip(s, d)]))
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        self.box.wait_for(lambda: list(self.states().values()).count("succeeded") == 1000, 120,
                          "1,000 pairs")
        with open(self.ran) as f:
            runs = f.read().split("\n")[:-1]
        self.assertEqual(len(runs), 1000)
        self.assertEqual(len(set(runs)), 1000)
        for line in runs:  # each with its own JSON and its own dump, whole
            j, d = line.split("|")
            self.assertEqual("dump of " + json.loads(j)["crash"], d)
        self.box.wait_for(lambda: len(self.box.listing("archive")) == 2000, 30, "both halves moved")
        self.assertEqual([n for n in self.box.listing() if n not in ("archive", "failed",
                                                                      "deferred")], [])

    def test_a_json_without_its_dump_fails_after_the_timeout(self):
        self.start("--pair-timeout", "1.5")
        t0 = time.time()
        self.box.drop("lonely.json", json.dumps({"crash": "lonely"}))
        self.box.drop("paired.json", json.dumps({"crash": "paired"}))
        self.box.drop("paired.dump", "dump of paired")
        self.box.wait_for(lambda: self.states().get("paired.json") == "succeeded", 30, "the pair")
        # Until 1.5 s after the drop the lonely half is still waiting, not a job yet (looked
        # at 1 s after it, unless the pair itself took longer on a slow machine).
        if time.time() - t0 < 1.0:
            time.sleep(max(0.0, t0 + 1.0 - time.time()))
            self.assertNotIn("lonely.json", self.states())
        self.box.wait_for(lambda: self.states().get("lonely.json") == "failed", 30, "the timeout")
        self.assertGreaterEqual(time.time() - t0, 1.5)
        code, message = self.box.query(
            "SELECT error_code, error_message FROM jobs WHERE name='lonely.json'")[0]
        self.assertEqual(code, "missing_companion")
        self.assertIn("lonely.dump did not arrive", message)
        self.box.wait_for(lambda: "lonely.json" in self.box.listing("failed"), 10, "failed/")

    def test_finished_pairs_go_to_dated_save_folders_or_are_deleted(self):
        ok_dir = os.path.join(self.box.dir, "saved-ok")
        self.start("--pair-timeout", "0.5", "--save-successful-to", ok_dir,
                   "--save-failed-to", "")
        self.box.drop("good.json", json.dumps({"crash": "good"}))
        self.box.drop("good.dump", "dump of good")
        self.box.drop("alone.json", json.dumps({"crash": "alone"}))
        self.box.wait_for(lambda: self.states() == {"good.json": "succeeded",
                                                   "alone.json": "failed"}, 30, "both to end")
        day = time.strftime("%Y%m%d", time.gmtime())
        self.box.wait_for(lambda: os.path.isdir(os.path.join(ok_dir, day)) and sorted(
            os.listdir(os.path.join(ok_dir, day))) == ["good.dump", "good.json"], 10, "saved")
        self.box.wait_for(lambda: "alone.json" not in self.box.listing(), 10, "deleted")
        self.assertEqual(self.box.listing("failed"), [])
        self.assertEqual(self.box.listing("archive"), [])

    def test_a_save_folder_on_another_filesystem_is_refused_at_the_start(self):
        # Finished files move by rename: a save folder on another filesystem would make every
        # move fail after its job. /dev/shm is a tmpfs of its own on every Linux machine.
        elsewhere = os.path.join("/dev/shm", "sluice-save-%d" % os.getpid())
        self.assertNotEqual(os.stat("/dev/shm").st_dev, os.stat(self.box.dir).st_dev)
        try:
            for flag in ("--save-successful-to", "--save-failed-to"):
                r = self.box.burst("--kind", "exec", flag, elsewhere)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(flag + " " + elsewhere + " is on another filesystem than the spool",
                              r.stderr)
            # On the spool's filesystem it is taken.
            r = self.box.burst("--kind", "exec", "--save-successful-to",
                               os.path.join(self.box.dir, "saved"))
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            import shutil
            shutil.rmtree(elsewhere, ignore_errors=True)

    def test_a_companion_suffix_that_is_not_a_file_beside_the_job_is_refused(self):
        # x + "/../../secret" would be a file outside the spool: given to the command, then
        # moved into archive/ after the job. A suffix ending in .json makes each companion a
        # job of its own.
        outside = os.path.join(self.box.dir, "secret")
        with open(outside, "w") as f:
            f.write("not the spool's")
        os.mkdir(os.path.join(self.box.spool, "x"))
        self.box.drop("x.json", json.dumps(["/bin/true"]))
        for suffix, why in (("/../../secret", "holds a '/'"), ("/x", "holds a '/'"),
                            (".meta.json", "ends in .json"), ("", "is empty"),
                            (".du\x1bmp", "control character")):
            r = self.box.burst("--kind", "exec", "--companions", suffix)
            self.assertEqual(r.returncode, 2, (suffix, r.stderr))
            self.assertIn(why, r.stderr)
        # A config file's list goes the same way.
        config = os.path.join(self.box.dir, "sluice.toml")
        with open(config, "w") as f:
            f.write('[spool.crashes]\ndir = "%s"\nkind = "exec"\ncompanions = [".dump", '
                    '"/../../secret"]\n' % self.box.spool)
        r = subprocess.run([harness.SLUICE, "serve", "-c", config, "--burst", "--no-api",
                            "--database", "sqlite:" + os.path.join(self.box.dir, "c.db")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("holds a '/'", r.stderr)
        self.assertEqual(self.box.listing(), ["x", "x.json"])  # nothing ran, nothing moved
        with open(outside) as f:
            self.assertEqual(f.read(), "not the spool's")

    def test_a_companion_replaced_while_its_job_ran_stays_for_the_next_pair(self):
        # A producer reusing names: x.dump of the next pair lands while x.json's job still
        # runs with the last one. Moving it by name would archive the new dump with the old
        # job and leave the next x.json without its companion.
        self.companion_replaced_while_its_job_ran(lambda: self.box.drop("x.dump", "dump2"))

    def test_a_companion_deleted_and_written_again_while_its_job_ran_stays_too(self):
        # The new dump may get the old one's inode number (ext4 hands a freed one out at once).
        def again():
            path = os.path.join(self.box.spool, "x.dump")
            os.unlink(path)
            with open(path, "w") as f:
                f.write("dump2\n")
        self.companion_replaced_while_its_job_ran(again)

    def companion_replaced_while_its_job_ran(self, replace):
        started = os.path.join(self.box.dir, "started")
        self.command = json.dumps(["/bin/sh", "-c",
                                   'read -r a < "$1"; read -r b < "$2"; echo "$a|$b" >> %s; '
                                   'touch %s; sleep 1.5' % (self.ran, started),
                                   "sh", "{json}", "{dump}"])
        self.start("--max-workers", "1")
        self.box.drop("x.json", "json1")
        self.box.drop("x.dump", "dump1")
        self.box.wait_for(lambda: os.path.exists(started), 30, "the first job to start")
        replace()
        self.box.wait_for(lambda: "x.json" in self.box.listing("archive"), 30, "first job done")
        time.sleep(0.5)
        self.assertIn("x.dump", self.box.listing())  # not taken away with the first job
        self.box.drop("x.json", "json2")
        self.box.wait_for(lambda: self.box.query("SELECT state FROM jobs") ==
                          [("succeeded",)] * 2 and "x.dump" not in self.box.listing(), 30,
                          "the second pair")
        with open(self.ran) as f:
            self.assertEqual(f.read().split(), ["json1|dump1", "json2|dump2"])
        archived = self.box.listing("archive")
        self.assertEqual(len(archived), 3, archived)  # x.json, x.N.json and the second x.dump
        self.assertEqual(self.box.listing(), ["archive", "deferred", "failed"])

    def test_retry_over_the_api_brings_both_halves_back(self):
        self.box.api = True
        gate = os.path.join(self.box.dir, "gate")
        self.command = json.dumps(["/bin/sh", "-c",
                                   '[ -e %s ] && read -r a < "$2"; [ -e %s ]' % (gate, gate),
                                   "sh", "{json}", "{dump}"])
        self.start("--max-attempts", "1")
        port = self.box.wait_for_api()
        self.box.drop("x.json", json.dumps({"crash": "x"}))
        self.box.drop("x.dump", "dump of x")
        self.box.wait_for(lambda: sorted(self.box.listing("failed")) ==
                          ["x.dump", "x.json", "x.json.error.json"], 30, "both in failed/")
        open(gate, "w").close()
        job_id = self.box.query("SELECT id FROM jobs WHERE name='x.json'")[0][0]
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/api/v1/jobs/%d/retry" % job_id, body="{}")
        self.assertEqual(c.getresponse().status, 202)
        self.box.wait_for(lambda: sorted(self.box.listing("archive")) == ["x.dump", "x.json"], 30,
                          "the pair to run again and be archived")
        self.assertEqual(self.box.listing("failed"), [])

    def test_a_companion_that_is_not_a_regular_file_is_never_given_to_the_command(self):
        # A symlink out of the spool, a directory, a FIFO (the command would block on it): the
        # pair fails at once, named, without waiting for --pair-timeout; the command never ran.
        secret = os.path.join(self.box.dir, "secret")
        with open(secret, "w") as f:
            f.write("outside the spool\n")
        spool = self.box.spool
        for name in ("link", "dir", "fifo", "ok"):
            self.box.drop(name + ".json", json.dumps({"crash": name}))
        os.symlink(secret, os.path.join(spool, "link.dump"))
        os.mkdir(os.path.join(spool, "dir.dump"))
        os.mkfifo(os.path.join(spool, "fifo.dump"))
        self.box.drop("ok.dump", "dump of ok")
        t0 = time.time()
        r = self.box.burst("--kind", "exec", "--command", self.command, "--companions", ".dump",
                           "--pair-timeout", "600", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.time() - t0, 30)
        rows = dict((n, (st, code, msg)) for n, st, code, msg in self.box.query(
            "SELECT name, state, error_code, error_message FROM jobs"))
        self.assertEqual(rows["ok.json"][0], "succeeded")
        for name, what in (("link", "a symbolic link"), ("dir", "a directory"),
                           ("fifo", "a FIFO")):
            state, code, message = rows[name + ".json"]
            self.assertEqual((state, code), ("failed", "unreadable_file"), name)
            self.assertIn(name + ".dump is " + what, message)
        with open(self.ran) as f:
            self.assertEqual(f.read(), '{"crash": "ok"}|dump of ok\n')
        # Both halves went to failed/ together: the link itself, not what it points at.
        failed = set(self.box.listing("failed"))
        self.assertTrue({"link.json", "link.dump", "dir.dump", "fifo.dump"} <= failed, failed)
        self.assertTrue(os.path.islink(os.path.join(spool, "failed", "link.dump")))
        with open(secret) as f:
            self.assertEqual(f.read(), "outside the spool\n")

    def test_a_burst_leaves_a_young_json_without_its_dump_and_fails_an_old_one(self):
        self.box.drop("young.json", json.dumps({"crash": "young"}))
        self.box.drop("old.json", json.dumps({"crash": "old"}))
        hour_ago = time.time() - 3600
        os.utime(os.path.join(self.box.spool, "old.json"), (hour_ago, hour_ago))
        self.box.drop("pair.json", json.dumps({"crash": "pair"}))
        self.box.drop("pair.dump", "dump of pair")
        t0 = time.time()
        r = self.box.burst("--kind", "exec", "--command", self.command, "--companions", ".dump",
                           "--pair-timeout", "600", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.time() - t0, 30)  # not the 600 s of the pair timeout
        self.assertIn("young.json left in the spool: young.dump has not arrived", r.stderr)
        states = self.states()
        self.assertEqual(states, {"pair.json": "succeeded", "old.json": "failed"})
        self.assertIn("young.json", self.box.listing())
        # The next run, once the dump is there, takes the pair.
        self.box.drop("young.dump", "dump of young")
        r = self.box.burst("--kind", "exec", "--command", self.command, "--companions", ".dump",
                           "--pair-timeout", "600", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.states()["young.json"], "succeeded")


if __name__ == "__main__":
    harness.main()
