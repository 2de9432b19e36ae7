"""King Arthur's own client requests, replayed as its tests/test_server.py makes them: POST to
the reading routes, "archive": {}, the task and job shapes (scheduling_cfg, the flat result
with epoch dates, the timeout, the log as records), dates as Arthur writes them, trailing
slashes, and its README batch refused whole for the backend Sluice does not have."""

import json
import os
import time
import unittest
import urllib.request

import harness
from test_tasks import README_TASKS, commit, git


class ArthurCompatTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.repo = os.path.join(self.box.dir, "repo")
        os.makedirs(self.repo)
        git(self.repo, "init", "-q", "-b", "main")
        commit(self.repo, "a.txt", "one\n", "first")
        commit(self.repo, "b.txt", "two\n", "second")
        self.box.start("--archive-path", os.path.join(self.box.dir, "archive"))
        self.api = "http://127.0.0.1:%d" % self.box.wait_for_api()

    def tearDown(self):
        self.box.close()

    def post(self, path, data):
        """As Arthur's tests do: requests.post(url, json=data, headers=Content-Type)."""
        req = urllib.request.Request(self.api + path, data=json.dumps(data).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read().decode("utf8"))
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode("utf8"))

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=30) as r:
            return r.status, json.loads(r.read().decode("utf8"))

    def test_arthurs_test_server_requests(self):
        data = {"tasks": [
            {"task_id": "arthur.git", "backend": "git",
             "backend_args": {"gitpath": "/tmp/x", "uri": self.repo, "from_date": "2015-03-01"},
             "category": "commit", "archive": {}, "scheduler": {"delay": 10}},
            {"task_id": "plain.git", "backend": "git", "backend_args": {"uri": self.repo},
             "category": "commit"},
        ]}
        status, _ = self.post("/add", data)
        self.assertEqual(status, 200)
        # The reading routes answer a POST (with a body, ignored) as they answer a GET.
        for path in ("/tasks", "/tasks/"):
            status, body = self.post(path, data)
            self.assertEqual(status, 200, path)
            self.assertEqual([t["task_id"] for t in body["tasks"]], ["arthur.git", "plain.git"])

        def finished():
            status, task = self.post("/task/arthur.git", data)
            jobs = task["jobs"]
            return status == 200 and jobs and jobs[0]["job_status"] == "finished"
        self.box.wait_for(finished, 60, "the first run to finish")
        status, task = self.post("/task/arthur.git/", data)
        self.assertEqual(status, 200)
        self.assertEqual(task["scheduling_cfg"],
                         {"delay": 10, "max_retries": 3, "max_age": None, "queue": None})
        self.assertIsNone(task["archiving_cfg"])
        self.assertEqual(task["backend_args"]["from_date"], "2015-03-01T00:00:00+00:00")
        self.assertTrue(task["backend_args"]["next_from_date"].endswith("+00:00"))
        self.assertIsInstance(task["created_on"], float)
        job = task["jobs"][0]
        self.assertEqual((job["task_id"], job["job_number"], job["job_status"]),
                         ("arthur.git", 1, "finished"))
        result = job["result"]
        for key in ("job_id", "job_number", "task_id", "fetched", "skipped", "min_updated_on",
                    "max_updated_on", "last_updated_on", "last_uuid", "min_offset", "max_offset",
                    "last_offset", "extras"):
            self.assertIn(key, result)
        self.assertEqual((result["fetched"], result["skipped"]), (2, 0))
        self.assertIsInstance(result["min_updated_on"], float)
        self.assertLessEqual(result["min_updated_on"], result["max_updated_on"])
        self.assertEqual(len(result["last_uuid"]), 40)
        self.assertIsNone(result["min_offset"])
        status, plain = self.post("/task/plain.git", data)
        self.assertIsNone(plain["scheduling_cfg"])

        status, run = self.post("/job/%s" % result["job_id"], data)
        self.assertEqual(status, 200)
        self.assertEqual((run["job_id"], run["job_number"], run["job_status"]),
                         (result["job_id"], 1, "finished"))
        self.assertEqual(run["timeout"], 3600)
        self.assertEqual(run["origin"], "create")
        self.assertEqual(run["result"], result)
        self.assertTrue(run["log"])
        for record in run["log"]:
            self.assertEqual(sorted(record), ["created", "level", "module", "msg"])
            self.assertIsInstance(record["created"], float)
        status, same = self.get("/job/%s/" % result["job_id"])
        self.assertEqual(same["job_id"], run["job_id"])

    def test_the_readme_batch_is_refused_whole_naming_the_missing_backend(self):
        status, body = self.post("/add", README_TASKS)
        self.assertEqual(status, 422)
        message = body["error"]["message"]
        self.assertIn("bugzillarest", message)
        self.assertIn("git", message)
        self.assertEqual(self.get("/tasks")[1]["tasks"], [])


if __name__ == "__main__":
    harness.main()
