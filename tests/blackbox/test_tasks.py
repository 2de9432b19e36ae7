"""King Arthur's task API, done durably: tasks added with curl as Arthur's README shows, a git
task over a local repository that picks up only new commits, retries with backoff, FAILED and
/reschedule, max_age, the archive queue, `sluice tasks`, and kill -9 in the middle of a run."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness

# Arthur's README example: a git task and a bugzillarest one (a backend Sluice does not have).
README_TASKS = {
    "tasks": [
        {"task_id": "arthur.git", "backend": "git",
         "backend_args": {"gitpath": "/tmp/git/arthur.git/",
                          "uri": "https://github.com/chaoss/grimoirelab-kingarthur.git",
                          "from_date": "2015-03-01"},
         "category": "commit", "scheduler": {"delay": 10}},
        {"task_id": "bugzilla_mozilla", "backend": "bugzillarest",
         "backend_args": {"url": "https://bugzilla.mozilla.org/", "from_date": "2016-09-19"},
         "category": "bug",
         "archive": {"fetch_from_archive": True, "archived_after": "2018-02-26 09:00"},
         "scheduler": {"delay": 60, "max_retries": 5}},
    ]
}


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="Ann Author", GIT_AUTHOR_EMAIL="ann@example.org",
               GIT_COMMITTER_NAME="Cy Committer", GIT_COMMITTER_EMAIL="cy@example.org")
    subprocess.run(["git", "-C", repo] + list(args), check=True, capture_output=True, env=env)


def commit(repo, path, text, message):
    with open(os.path.join(repo, path), "a") as f:
        f.write(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)


class TasksTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.repo = os.path.join(self.box.dir, "repo")
        os.makedirs(self.repo)
        git(self.repo, "init", "-q", "-b", "main")
        commit(self.repo, "a.txt", "one\n", "first")
        commit(self.repo, "b.txt", "x\ny\nz\n", "second\n\nwith a body")
        commit(self.repo, "a.txt", "two\n", "third")
        self.items_dir = os.path.join(self.box.dir, "items")

    def tearDown(self):
        self.box.close()

    def start(self, *extra, env=None):
        log = os.path.join(self.box.dir, "daemon.log")
        if os.path.exists(log):  # a restart: the API's port is read from a fresh log
            with open(log) as old, open(log + ".before", "a") as keep:
                keep.write(old.read())
            os.unlink(log)
        self.box.start("--archive-path", os.path.join(self.box.dir, "archive"),
                       "--items-dir", self.items_dir, "--task-retry-delay", "0.2", *extra,
                       env=env)
        self.api = "http://127.0.0.1:%d" % self.box.wait_for_api()

    token = None

    def curl(self, path, data=None, token=None):
        token = token or self.token
        cmd = ["curl", "-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json"]
        if token:
            cmd += ["-H", "Authorization: Bearer " + token]
        if data is not None:
            cmd += ["--data", "@-"]
        r = subprocess.run(cmd + [self.api + path], input=json.dumps(data) if data is not None
                           else None, capture_output=True, text=True, timeout=30)
        body, code = r.stdout.rsplit("\n", 1)
        return int(code), json.loads(body) if body else None

    def task(self, task_id, delay=1, **sched):
        return {"task_id": task_id, "backend": "git", "category": "commit",
                "backend_args": {"uri": self.repo, "from_date": "2000-01-01"},
                "scheduler": dict(delay=delay, **sched)}

    def wait_task(self, task_id, pred, timeout=30, what="task state"):
        seen = []

        def check():
            code, t = self.curl("/task/" + task_id)
            seen[:] = [t]
            return code == 200 and pred(t)
        self.box.wait_for(check, timeout, what)
        return seen[0]

    def events(self, query, count, timeout=10):
        """The first `count` frames of GET /api/v1/events?QUERY."""
        client = harness.SseClient(int(self.api.rsplit(":", 1)[1]), "/api/v1/events?" + query)
        try:
            return client.frames(lambda got: len(got) >= count, timeout)
        finally:
            client.close()

    def items(self, task_id):
        return [json.loads(r[0]) for r in self.box.query(
            "SELECT data FROM items WHERE task_id=? ORDER BY seq", task_id)]

    def jsonl(self, task_id):
        with open(os.path.join(self.items_dir, task_id + ".jsonl")) as f:
            return [json.loads(line) for line in f]

    def test_readme_tasks_with_curl_then_only_new_commits(self):
        self.start()
        code, body = self.curl("/add", README_TASKS)
        self.assertEqual(code, 422)
        self.assertIn("bugzillarest", body["error"]["message"])
        self.assertEqual(self.curl("/tasks"), (200, {"tasks": []}))  # validated whole

        readme_git = json.loads(json.dumps(README_TASKS["tasks"][0]))
        readme_git["backend_args"]["uri"] = self.repo
        readme_git["scheduler"]["delay"] = 1
        code, body = self.curl("/add", {"tasks": [readme_git]})
        self.assertEqual(code, 200, body)
        t = self.wait_task("arthur.git", lambda t: any(j["job_status"] == "finished"
                                                       for j in t["jobs"]))
        items = self.items("arthur.git")
        self.assertEqual([i["data"]["message"] for i in items],
                         ["first", "second\n\nwith a body", "third"])
        second = items[1]["data"]
        self.assertEqual(second["parents"], [items[0]["data"]["commit"]])
        self.assertEqual(second["Author"], "Ann Author <ann@example.org>")
        self.assertEqual(second["Commit"], "Cy Committer <cy@example.org>")
        # Perceval's item, field for field (its git backend's file entries and date format).
        blob = subprocess.run(["git", "-C", self.repo, "rev-parse", "HEAD~1:b.txt"],
                              capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(second["files"], [{"modes": ["000000", "100644"],
                                            "indexes": ["0000000", blob[:7]], "action": "A",
                                            "file": "b.txt", "added": "3", "removed": "0"}])
        self.assertEqual(len(second["commit"]), 40)
        self.assertEqual(second["refs"], [])
        self.assertRegex(second["AuthorDate"],
                         r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d{1,2} \d\d:\d\d:\d\d \d{4} [+-]\d{4}$")
        self.assertIn("CommitDate", second)
        self.assertIn("HEAD -> refs/heads/main", items[2]["data"]["refs"])
        for key in ("backend_version", "perceval_version", "timestamp", "search_fields"):
            self.assertIn(key, items[1])
        self.assertEqual((items[1]["offset"], items[1]["tag"]), (second["commit"], self.repo))
        self.assertEqual(t["backend"], "git")
        self.assertEqual(t["backend_args"]["gitpath"], "/tmp/git/arthur.git/")
        self.assertFalse(os.path.exists("/tmp/git/arthur.git/HEAD"))  # clones stay in the archive
        self.assertTrue(os.listdir(os.path.join(self.box.dir, "archive", "git")))
        first_job = t["jobs"][0]
        self.assertEqual(first_job["result"]["summary"]["fetched"], 3)
        code, job = self.curl("/job/" + first_job["job_id"])
        self.assertEqual(code, 200)
        self.assertEqual((job["job_status"], job["origin"], job["job_number"]),
                         ("finished", "create", 1))
        self.assertIn("git clone", " ".join(e["msg"] for e in job["log"]))
        # Every state change of the task is also an event on the one stream.
        types = [e["event"] for e in self.events("kind=task&after=0", 4)]
        self.assertEqual(types[:4], ["task.scheduled", "task.enqueued", "task.running",
                                     "task.scheduled"])

        # New commits: the next runs fetch them and only them.
        time.sleep(1.1)  # a later commit date than the cursor's
        commit(self.repo, "c.txt", "new\n", "fourth")
        commit(self.repo, "a.txt", "three\n", "fifth")
        self.box.wait_for(lambda: len(self.items("arthur.git")) == 5, 30, "new commits")
        time.sleep(2.5)  # more runs: nothing new, nothing twice
        self.assertEqual(len(self.items("arthur.git")), 5)
        t = self.curl("/task/arthur.git")[1]
        fetched = [j["result"]["summary"]["fetched"] for j in t["jobs"]
                   if j["job_status"] == "finished"]
        self.assertEqual(sum(fetched), 5)
        # The first run took the three old commits; later runs the two new ones (in one run,
        # or two when a run fell between the two commits).
        self.assertEqual(fetched.count(3), 1)
        self.assertGreater(t["backend_args"]["next_from_date"], "2015")
        later = [j for j in t["jobs"] if j["job_number"] > 1 and j["job_status"] == "finished"]
        self.assertEqual(self.curl("/job/" + later[0]["job_id"])[1]["origin"], "update")
        lines = self.jsonl("arthur.git")
        self.assertEqual([l["data"]["message"] for l in lines][3:], ["fourth", "fifth"])
        self.assertEqual(len({l["uuid"] for l in lines}), 5)

    def test_errors_and_the_cli(self):
        self.start("--api-token", "s3cret")
        code, _ = self.curl("/tasks")
        self.assertEqual(code, 401)  # no token yet
        tok = self.token = "s3cret"
        self.assertEqual(self.curl("/add", {"nope": 1}, tok)[0], 400)
        self.assertEqual(self.curl("/add", {"tasks": [self.task("a"), self.task("a")]}, tok)[0],
                         409)
        bad = self.task("b")
        bad["scheduler"]["delay"] = "soon"
        code, body = self.curl("/add", {"tasks": [self.task("ok"), bad]}, tok)
        self.assertEqual(code, 422)
        self.assertIn("delay", body["error"]["message"])
        no_uri = self.task("c")
        del no_uri["backend_args"]["uri"]
        self.assertEqual(self.curl("/add", {"tasks": [no_uri]}, tok)[0], 422)
        typo = self.task("d")
        typo["schedular"] = {}
        self.assertEqual(self.curl("/add", {"tasks": [typo]}, tok)[0], 422)
        self.assertEqual(self.curl("/tasks", None, tok), (200, {"tasks": []}))
        self.assertEqual(self.curl("/task/none", None, tok)[0], 404)
        self.assertEqual(self.curl("/job/none", None, tok)[0], 404)

        env = dict(os.environ, SLUICE_API_TOKEN=tok)
        path = os.path.join(self.box.dir, "t.json")
        with open(path, "w") as f:
            json.dump({"tasks": [self.task("from-file", delay=3600)]}, f)
        run = lambda *a, **kw: subprocess.run(
            [harness.SLUICE, "tasks"] + list(a) + ["--api", self.api], capture_output=True,
            text=True, env=env, timeout=60, **kw)
        self.assertEqual(run("add", path).returncode, 0)
        r = run("add", "-", input=json.dumps({"tasks": [self.task("from/stdin", delay=3600)]}))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(run("add", path).returncode, 2)  # already there
        self.wait_task("from%2Fstdin", lambda t: t["status"] == "SCHEDULED" and t["age"] == 1)
        r = run("list")
        self.assertEqual(r.returncode, 0)
        self.assertIn("from/stdin", r.stdout)
        self.assertIn("SCHEDULED", r.stdout)
        r = run("show", "from/stdin")
        self.assertEqual(json.loads(r.stdout)["task_id"], "from/stdin")
        self.assertEqual(run("show", "nope").returncode, 3)
        self.assertEqual(run("reschedule", "from-file").returncode, 2)  # not FAILED
        self.assertEqual(run("remove", "from-file").returncode, 0)
        self.assertEqual(run("remove", "from-file").returncode, 3)
        self.assertEqual([t["task_id"] for t in json.loads(run("list", "--json").stdout)["tasks"]],
                         ["from/stdin"])

    def test_tasks_past_the_bounds_are_refused_with_507(self):
        self.start("--max-tasks", "3", "--max-task-bytes", "2000")
        code, body = self.curl("/add", {"tasks": [self.task("t%d" % i, 3600) for i in range(4)]})
        self.assertEqual(code, 507, body)
        self.assertEqual(body["error"]["code"], "too_many_tasks")
        self.assertIn("--max-tasks 3", body["error"]["message"])
        self.assertEqual(self.curl("/tasks"), (200, {"tasks": []}))  # all or none
        self.assertEqual(self.curl("/add", {"tasks": [self.task("t0", 3600),
                                                      self.task("t1", 3600)]})[0], 200)
        big = self.task("big", 3600)
        big["backend_args"]["branches"] = ["b%04d" % i for i in range(400)]
        code, body = self.curl("/add", {"tasks": [big]})
        self.assertEqual(code, 507, body)
        self.assertIn("--max-task-bytes 2000", body["error"]["message"])
        self.assertEqual(self.curl("/add", {"tasks": [self.task("t2", 3600)]})[0], 200)
        r = subprocess.run([harness.SLUICE, "tasks", "add", "-", "--api", self.api],
                           input=json.dumps({"tasks": [self.task("t3", 3600)]}),
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--max-tasks", r.stdout + r.stderr)
        # Room comes back with a removal, and the stored tasks count again after a restart.
        self.assertEqual(self.curl("/remove", {"tasks": [{"task_id": "t0"}]}),
                         (200, {"tasks": {"t0": True}}))
        self.assertEqual(self.curl("/add", {"tasks": [self.task("t3", 3600)]})[0], 200)
        self.box.stop()
        self.start("--max-tasks", "3")
        self.assertEqual(self.curl("/add", {"tasks": [self.task("t4", 3600)]})[0], 507)
        self.assertEqual(sorted(t["task_id"] for t in self.curl("/tasks")[1]["tasks"]),
                         ["t1", "t2", "t3"])

    def test_failures_back_off_fail_and_reschedule(self):
        self.start()
        missing = os.path.join(self.box.dir, "later")
        t = self.task("flaky", delay=3600, max_retries=2)
        t["backend_args"]["uri"] = missing
        self.assertEqual(self.curl("/add", {"tasks": [t]})[0], 200)
        t = self.wait_task("flaky", lambda t: t["status"] == "FAILED", what="FAILED")
        self.assertEqual((t["num_failures"], len(t["jobs"])), (3, 3))
        job = self.curl("/job/" + t["jobs"][2]["job_id"])[1]
        self.assertEqual((job["job_status"], job["origin"]), ("failed", "retry"))
        self.assertIn("does not exist", job["error"])
        started = [self.curl("/job/" + j["job_id"])[1]["started_at"] for j in t["jobs"]]
        self.assertLess(started[0], started[1])
        # Fixed by the operator, then rescheduled: runs again from age 0.
        os.rename(self.repo, missing)
        self.assertEqual(self.curl("/reschedule", {"tasks": [{"task_id": "flaky"}]}),
                         (200, {"tasks": {"flaky": True}}))
        t = self.wait_task("flaky", lambda t: t["status"] == "SCHEDULED" and t["age"] == 1 and
                           t["num_failures"] == 0, what="rescheduled run")
        self.assertEqual(len(self.items("flaky")), 3)

    def test_max_age_and_archive_queue_complete_the_task(self):
        self.start()
        self.assertEqual(self.curl("/add", {"tasks": [self.task("aged", delay=0, max_age=2)]})[0],
                         200)
        t = self.wait_task("aged", lambda t: t["status"] == "COMPLETED", what="COMPLETED")
        self.assertEqual((t["age"], len(t["jobs"])), (2, 2))
        archived = self.task("from-archive", delay=0)
        archived["archive"] = {"fetch_from_archive": True}
        self.assertEqual(self.curl("/add", {"tasks": [archived]})[0], 200)
        t = self.wait_task("from-archive", lambda t: t["status"] == "COMPLETED")
        job = self.curl("/job/" + t["jobs"][0]["job_id"])[1]
        self.assertEqual(job["origin"], "archive")
        self.assertIn("without updating", " ".join(e["msg"] for e in job["log"]))
        self.assertEqual(len(self.items("from-archive")), 3)

    def test_thousands_of_tasks_at_once_leave_the_api_answering(self):
        # Each first run is a commit of its own, queued while the API is used: adding,
        # removing and /healthz must not wait for them all.
        self.start("--task-workers", "1")
        tasks = [self.task("many%05d" % i, 3600) for i in range(5000)]
        for t in tasks:
            t["backend_args"]["uri"] = "/nonexistent/" + t["task_id"]
        t0 = time.monotonic()
        self.assertEqual(self.curl("/add", {"tasks": tasks})[0], 200)
        code, body = self.curl("/remove", {"tasks": [{"task_id": t["task_id"]} for t in tasks]})
        self.assertEqual(code, 200)
        self.assertTrue(all(body["tasks"].values()))
        self.assertEqual(subprocess.run(["curl", "-sf", self.api + "/healthz"],
                                        capture_output=True, timeout=30).returncode, 0)
        elapsed = time.monotonic() - t0
        # 0.25 s here now; 8.1 s before (each task and each first run a commit, the removal
        # waiting for the scheduler to queue them all).
        self.assertLess(elapsed, 3, "5,000 tasks added and removed in %.1f s" % elapsed)
        self.assertEqual(self.curl("/tasks"), (200, {"tasks": []}))
        self.assertEqual(self.box.query(
            "SELECT COUNT(*) FROM task_runs WHERE status IN ('queued', 'started')")[0][0], 0)

    def test_the_task_api_runs_beside_the_rest_of_the_api(self):
        # A large /add is stored off the I/O thread: /healthz, asked all along, keeps being
        # answered at once (it waited for the whole /add when both shared the thread).
        self.start()
        tasks = [self.task("big%05d" % i, 3600) for i in range(40000)]
        answered = threading.Event()
        waits = []

        def health():
            while not answered.is_set():
                t = time.monotonic()
                r = subprocess.run(["curl", "-sf", self.api + "/healthz"], capture_output=True,
                                   timeout=60)
                self.assertEqual(r.returncode, 0)
                waits.append(time.monotonic() - t)
        prober = threading.Thread(target=health)
        t0 = time.monotonic()
        prober.start()
        code = self.curl("/add", {"tasks": tasks})[0]
        took = time.monotonic() - t0
        answered.set()
        prober.join(60)
        self.assertEqual(code, 200)
        self.assertLess(max(waits), took / 2, "a /healthz waited %.2f s of the /add's %.2f s" % (
            max(waits), took))

    def test_many_failed_tasks_rescheduled_at_once(self):
        self.start("--task-workers", "4")
        tasks = [self.task("bad%03d" % i, 3600, max_retries=0) for i in range(200)]
        for t in tasks:
            t["backend_args"]["uri"] = "/nonexistent/" + t["task_id"]
        self.assertEqual(self.curl("/add", {"tasks": tasks})[0], 200)
        self.box.wait_for(lambda: all(t["status"] == "FAILED" for t in self.curl("/tasks")[1]
                                      ["tasks"]), 60, "all FAILED")
        ids = [{"task_id": t["task_id"]} for t in tasks] + [{"task_id": "nope"}]
        code, body = self.curl("/reschedule", {"tasks": ids})
        self.assertEqual(code, 200)
        self.assertEqual(sum(body["tasks"].values()), 200)
        self.assertFalse(body["tasks"]["nope"])
        # Each ran again: a second run of its own (job 2).
        self.box.wait_for(lambda: all(len(t["jobs"]) == 2 for t in self.curl("/tasks")[1]
                                      ["tasks"]), 60, "every task run again")
        scheduled = self.events("kind=task&type=task.scheduled&after=0", 400)
        self.assertEqual(len(scheduled), 400)  # at /add and at /reschedule, each task

    def test_only_the_newest_runs_are_kept(self):
        self.start("--task-runs-kept", "2")
        self.assertEqual(self.curl("/add", {"tasks": [self.task("often", delay=0, max_age=6)]})[0],
                         200)
        t = self.wait_task("often", lambda t: t["status"] == "COMPLETED", what="COMPLETED")
        self.assertEqual(t["age"], 6)
        self.assertEqual([j["job_number"] for j in t["jobs"]], [5, 6])
        self.assertEqual(self.box.query("SELECT COUNT(*) FROM task_runs")[0][0], 2)
        self.assertEqual(len(self.items("often")), 3)  # the items stay

    def test_tasks_lists_the_newest_100_runs_and_task_all_kept(self):
        self.start()
        self.assertEqual(self.curl("/add", {"tasks": [self.task("busy", delay=0,
                                                                max_age=103)]})[0], 200)
        t = self.wait_task("busy", lambda t: t["status"] == "COMPLETED", timeout=120,
                           what="COMPLETED")
        self.assertEqual([j["job_number"] for j in t["jobs"]], list(range(1, 104)))
        listed = self.curl("/tasks")[1]["tasks"][0]
        self.assertEqual([j["job_number"] for j in listed["jobs"]], list(range(4, 104)))
        self.assertEqual(listed["jobs"][-1]["job_id"], t["jobs"][-1]["job_id"])

    def fast_import(self, commits):
        """Appends commits to main with git fast-import: (unix time, committer name, message
        bytes) each, exact bytes."""
        stream = []
        for i, (when, name, message) in enumerate(commits):
            content = b"%d\n" % i
            stream.append(b"commit refs/heads/main\ncommitter %s <c@example.org> %d +0000\n" % (
                name, when))
            stream.append(b"data %d\n%s\n" % (len(message), message))
            if i == 0:
                stream.append(b"from refs/heads/main^0\n")
            stream.append(b"M 644 inline f%d.txt\ndata %d\n%s\n" % (i % 13, len(content),
                                                                        content))
        subprocess.run(["git", "-C", self.repo, "fast-import", "--quiet"],
                       input=b"".join(stream), check=True, capture_output=True)

    def test_a_long_odd_history_is_stored_in_batches_and_a_kill_mid_run_doubles_nothing(self):
        # 60,000 commits (a batch is 50,000 commits or 32 MB of items, about 30,000 of these),
        # the first ones holding what git log's output
        # could be mistaken for structure by: separator bytes, escape sequences, bytes that
        # are not UTF-8.
        odd = [(1600000000, b"Odd\x1fName", b"sep \x1e\x1f esc \x1b[31mred\x1b[0m caf\xe9"),
               (1600000001, b"N", b"\n\nsluice-commit-\nsluice-message-end-\n1\t2\tx\n")]
        self.fast_import(odd + [(1600000002 + i, b"N", b"c %d" % i) for i in range(59998)])
        # A git whose log stops after 90% of its output (about 54,000 commits) while a marker
        # file exists.
        wrapper = os.path.join(self.box.dir, "bin")
        os.makedirs(wrapper)
        marker = os.path.join(self.box.dir, "slow")
        out = os.path.join(self.box.dir, "log.out")
        real_git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
        with open(os.path.join(wrapper, "git"), "w") as f:
            f.write('#!/bin/sh\ncase " $* " in\n*" log "*) %s "$@" > %s || exit $?\n'
                    '  n=$(( $(stat -c %%s %s) * 9 / 10 ))\n'
                    '  head -c $n %s; while [ -e %s ]; do sleep 0.1; done\n'
                    '  tail -c +$((n + 1)) %s ;;\n*) exec %s "$@" ;;\nesac\n'
                    % (real_git, out, out, out, marker, out, real_git))
        os.chmod(os.path.join(wrapper, "git"), 0o755)
        open(marker, "w").close()
        env = dict(os.environ, PATH=wrapper + ":" + os.environ["PATH"])
        self.start(env=env)
        self.assertEqual(self.curl("/add", {"tasks": [self.task("long", delay=3600)]})[0], 200)
        self.box.wait_for(lambda: len(self.box.query(
            "SELECT 1 FROM items WHERE task_id='long'")) >= 20000, 60, "a first batch stored")
        self.assertEqual(self.curl("/task/long")[1]["status"], "RUNNING")
        self.box.stop(signal.SIGKILL)
        stored = len(self.box.query("SELECT 1 FROM items WHERE task_id='long'"))
        self.assertLess(stored, 60003)
        os.unlink(marker)
        self.start(env=env)
        t = self.wait_task("long", lambda t: any(j["job_status"] == "finished"
                                                 for j in t["jobs"]), 60, "a finished run")
        items = self.items("long")  # each parsed by json.loads: valid JSON
        self.assertEqual(len(items), 60003)
        self.assertEqual(len({i["uuid"] for i in items}), 60003)
        by_message = {i["data"]["message"]: i["data"] for i in items}
        odd_one = by_message.get("sep \x1e\x1f esc \x1b[31mred\x1b[0m caf\ufffd")
        self.assertIsNotNone(odd_one)
        self.assertEqual(odd_one["Commit"], "Odd\x1fName <c@example.org>")
        # As Perceval stores it: git's fuller format drops leading empty lines, expands tabs.
        self.assertIn("sluice-commit-\nsluice-message-end-\n1       2       x", by_message)
        summary = [j for j in t["jobs"] if j["job_status"] == "finished"][0]["result"]["summary"]
        self.assertEqual((summary["fetched"], summary["skipped"]), (60003 - stored, stored))
        self.assertEqual(summary["last_updated_on"], "2020-09-14T05:06:39.000000Z")
        job = self.curl("/job/" + t["jobs"][-1]["job_id"])[1]
        self.assertIn("storing", " ".join(e["msg"] for e in job["log"]))
        self.assertEqual(len({l["uuid"] for l in self.jsonl("long")}), 60003)
        self.assertEqual(len(self.jsonl("long")), 60003)

    def test_kill_9_mid_run_then_restart(self):
        # A git that hangs while a marker file exists: the run is in progress when killed.
        wrapper = os.path.join(self.box.dir, "bin")
        os.makedirs(wrapper)
        marker = os.path.join(self.box.dir, "slow")
        real_git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
        with open(os.path.join(wrapper, "git"), "w") as f:
            f.write("#!/bin/sh\nwhile [ -e %s ]; do sleep 0.1; done\nexec %s \"$@\"\n" % (
                marker, real_git))
        os.chmod(os.path.join(wrapper, "git"), 0o755)
        open(marker, "w").close()
        env = dict(os.environ, PATH=wrapper + ":" + os.environ["PATH"])
        self.start(env=env)
        self.assertEqual(self.curl("/add", {"tasks": [self.task("survivor", delay=1),
                                                      self.task("idle", delay=3600)]})[0], 200)
        self.wait_task("survivor", lambda t: t["status"] == "RUNNING", what="RUNNING")
        created = self.curl("/task/survivor")[1]["created_on"]
        self.box.stop(signal.SIGKILL)
        os.unlink(marker)
        self.start(env=env)
        t = self.wait_task("survivor", lambda t: any(j["job_status"] == "finished"
                                                     for j in t["jobs"]), what="a finished run")
        self.assertEqual(t["created_on"], created)
        first = self.curl("/job/" + t["jobs"][0]["job_id"])[1]
        self.assertEqual(first["job_status"], "failed")
        self.assertIn("interrupted", first["error"])
        self.assertEqual(len(self.items("survivor")), 3)
        time.sleep(2.5)
        self.assertEqual(len(self.items("survivor")), 3)
        self.assertEqual(len(self.jsonl("survivor")), 3)
        idle = self.curl("/task/idle")[1]
        self.assertEqual(idle["status"], "SCHEDULED")
        self.assertEqual(len(self.items("idle")), 3)
        # A clean restart keeps schedules and cursors as they are.
        self.box.stop()
        sql = "SELECT status, next_run_at, next_from_date FROM tasks WHERE task_id='idle'"
        before = self.box.query(sql)
        self.start()
        self.assertEqual(self.box.query(sql), before)


if __name__ == "__main__":
    harness.main()
