"""King Arthur's task runs in a cluster: the `serve` holding the scheduler registers each due
run as a job of its queue, and any `sluice worker` of that queue runs it (as arthurd hands
jobs to arthurw). A worker killed mid-run loses the run to another worker, which runs it
again from the same cursor: items end up once in PostgreSQL and once in the Redis list."""

import json
import os
import signal
import subprocess
import time
import unittest
import urllib.request

import harness
from test_cluster import LEASE, Cluster
from test_tasks import commit, git


class ClusterTasksTest(unittest.TestCase):
    def setUp(self):
        self.c = Cluster("ctask")
        self.dir = self.c.serve.dir
        self.repo = os.path.join(self.dir, "repo")
        os.makedirs(self.repo)
        git(self.repo, "init", "-q", "-b", "main")
        for i in range(5):
            commit(self.repo, "a.txt", "line %d\n" % i, "commit %d" % i)
        # A git that hangs while the flag file exists: a run that is still working when its
        # worker is killed.
        self.slow = os.path.join(self.dir, "slow")
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True,
                              text=True).stdout.strip()
        with open(os.path.join(self.bin, "git"), "w") as f:
            f.write("#!/bin/sh\nif [ -e %s ]; then touch %s.reached; sleep 60; fi\n"
                    "exec %s \"$@\"\n" % (self.slow, self.slow, real))
        os.chmod(os.path.join(self.bin, "git"), 0o755)
        self.key = "items"

    def tearDown(self):
        self.c.close()

    def worker(self, name, slow_git=False, *extra):
        env = dict(os.environ)
        if slow_git:
            env["PATH"] = self.bin + ":" + env.get("PATH", "/usr/bin:/bin")
        log = os.path.join(self.dir, name + ".log")
        proc = harness.spawn(
            [harness.SLUICE, "worker", "-d", self.c.database, "--broker", self.c.url,
             "--lease", LEASE, "--archive-path", os.path.join(self.dir, "archive-" + name),
             "--task-retry-delay", "0.2", *extra], log, env=env)
        self.c.workers.append((proc, log))
        return proc, log

    def add_task(self, port, task_id, delay=1):
        body = json.dumps({"tasks": [{
            "task_id": task_id, "backend": "git", "category": "commit",
            "backend_args": {"uri": self.repo, "from_date": "2000-01-01"},
            "scheduler": {"delay": delay}}]}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/add" % port, body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            self.assertEqual(resp.status, 200)

    def stored(self, task_id):
        return [json.loads(r[0]) for r in self.c.serve.query(
            "SELECT data FROM items WHERE task_id=? ORDER BY seq", task_id)]

    def listed(self):
        return [json.loads(line) for line in self.c.redis.cli("LRANGE", self.key, 0, -1)]

    def test_a_run_whose_worker_is_killed_is_run_again_elsewhere_items_once(self):
        # The serve's own workers take only the "default" queue: task runs (create, update)
        # go to the worker processes.
        port = self.c.start_serve("--cluster-queue", "default", "--items-redis", self.c.url,
                                  "--items-key", self.key, "--task-retry-delay", "0.2")
        open(self.slow, "w").close()
        first, first_log = self.worker("first", slow_git=True)
        self.add_task(port, "repo")
        self.c.serve.wait_for(lambda: os.path.exists(self.slow + ".reached"), 30,
                              "the first run's git to start on the first worker")
        run_id, status = self.c.serve.query(
            "SELECT job_id, status FROM task_runs WHERE task_id='repo'")[0]
        self.assertEqual(status, "started")
        first.kill()
        first.wait()
        os.unlink(self.slow)
        second, second_log = self.worker("second")
        self.c.serve.wait_for(lambda: len(self.listed()) == 5, 60,
                              "5 items in the Redis list, from the second worker")
        for i in range(3):
            commit(self.repo, "b.txt", "more %d\n" % i, "later %d" % i)
        self.c.serve.wait_for(lambda: len(self.listed()) == 8, 30, "8 items in the list")
        time.sleep(2.5)  # more runs, nothing new
        stored = self.stored("repo")
        self.assertEqual(len(stored), 8)
        self.assertEqual(len({item["uuid"] for item in stored}), 8)
        self.assertEqual(self.listed(), stored)
        # The first run: started on the first worker, run again on the second, finished once.
        status, log, result = self.c.serve.query(
            "SELECT status, log, result FROM task_runs WHERE job_id=?", run_id)[0]
        self.assertEqual(status, "finished")
        self.assertIn("went away mid-run", log)
        self.assertEqual(json.loads(result)["summary"]["fetched"], 5)
        # Its job: two deliveries, one success; every later run's job succeeded too.
        jobs = self.c.serve.query(
            "SELECT state, attempts, idempotency_key FROM jobs WHERE kind='task' ORDER BY id")
        self.assertGreaterEqual(len(jobs), 3)
        self.assertEqual(jobs[0][2], "task-run:" + run_id)
        self.assertGreaterEqual(jobs[0][1], 2)
        self.assertTrue(all(state in ("succeeded", "queued", "running") for state, _, _ in jobs),
                        jobs)
        with open(second_log) as f:
            self.assertIn("finished here", f.read())
        # The scheduler follows: the task is scheduled again, its age counts every run.
        tasks = json.loads(urllib.request.urlopen(
            "http://127.0.0.1:%d/tasks" % port, timeout=10).read())["tasks"]
        self.assertIn(tasks[0]["status"], ("SCHEDULED", "ENQUEUED", "RUNNING"))
        self.assertGreaterEqual(tasks[0]["age"], 3)
        self.assertEqual(tasks[0]["num_failures"], 0)
        self.assertEqual(self.c.redis.cli("XLEN", "sluice:dead:create/task"), ["0"])

    def test_a_run_whose_job_is_a_dead_letter_fails_and_the_task_retries(self):
        # Arthur leaves such a task RUNNING for ever; here the scheduler sees the run's job
        # end without the run, fails the run with the job's reason, and retries the task.
        port = self.c.start_serve("--cluster-queue", "default", "--max-deliveries", "1",
                                  "--task-retry-delay", "0.2")
        open(self.slow, "w").close()
        first, _ = self.worker("first", True, "--max-deliveries", "1")
        self.add_task(port, "repo", delay=3600)
        self.c.serve.wait_for(lambda: os.path.exists(self.slow + ".reached"), 30,
                              "the first run's git to start")
        first.kill()
        first.wait()
        os.unlink(self.slow)
        self.worker("second", False, "--max-deliveries", "1")
        # The lease runs out, the job becomes a dead letter, the scheduler's next look at the
        # run's job (every 10 s) fails the run and the retry runs: 60 s was once too short
        # under make test's load.
        self.c.serve.wait_for(lambda: len(self.stored("repo")) == 5, 120,
                              "the retried run's 5 items")
        runs = self.c.serve.query(
            "SELECT job_number, queue, status, error FROM task_runs ORDER BY job_number")
        self.assertEqual([r[:3] for r in runs],
                         [(1, "create", "failed"), (2, "retry", "finished")])
        self.assertIn("dead_letter", runs[0][3])
        jobs = self.c.serve.query("SELECT state, error_code FROM jobs ORDER BY id")
        self.assertEqual(jobs[0], ("failed", "dead_letter"))
        self.assertEqual(jobs[1][0], "succeeded")
        tasks = json.loads(urllib.request.urlopen(
            "http://127.0.0.1:%d/tasks" % port, timeout=10).read())["tasks"]
        self.assertEqual((tasks[0]["status"], tasks[0]["num_failures"]), ("SCHEDULED", 0))


if __name__ == "__main__":
    harness.main()
