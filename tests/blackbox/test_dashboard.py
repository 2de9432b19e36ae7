"""The dashboard (GET /) in a real headless Chromium driven by Selenium: against a daemon fed
with the corpus and failing files, the overview's counts equal the API's and follow it live;
a hostile file name stays text; a failed job retried from the page succeeds and shows live;
the token flow, logout and a CSRF-less POST refused; after the daemon restarts the page
reconnects and shows every event once.

Screenshots go to $SLUICE_SCREENSHOTS when it is set (docs/screenshots has the last ones)."""

import http.client
import json
import os
import re
import shutil
import signal
import tempfile
import time
import unittest
import urllib.parse

import harness
from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException,
                                        StaleElementReferenceException, TimeoutException)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

XSS = "<img src=x onerror=alert(1)>.json"
TOKEN = "dash-token-7f3a9c"


def browser(profile):
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--user-data-dir=" + profile,
              "--no-first-run", "--disable-extensions"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


class DashboardTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox(api=True)
        d = self.box.dir
        self.kcidb = self.box.spool
        self.cmds = os.path.join(d, "cmds")
        os.makedirs(self.cmds)
        self.flag = os.path.join(d, "flag")
        self.port = harness.free_port()
        self.profile = tempfile.mkdtemp(prefix="sluice-chromium-")
        self.driver = None

    def tearDown(self):
        if self.driver is not None:
            self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)
        self.box.close()

    def start(self, *extra):
        conf = os.path.join(self.box.dir, "sluice.toml")
        with open(conf, "w") as f:
            f.write('database = "%s"\nport = %d\nsettle = 0.2\n\n'
                    '[spool.kernelci]\ndir = "%s"\nkind = "kcidb"\n\n'
                    '[spool.commands]\ndir = "%s"\nkind = "exec"\nmax_attempts = 1\n'
                    'allowed_commands = ["/bin/*"]\n' % (self.box.database, self.port, self.kcidb,
                                                         self.cmds))
        log = os.path.join(self.box.dir, "daemon.log")
        if os.path.exists(log):  # the port is read from the log: a fresh one per start
            with open(log, "rb") as old, open(log + ".before", "ab") as keep:
                keep.write(old.read())
            os.unlink(log)
        self.box.proc = harness.spawn([harness.SLUICE, "serve", "-c", conf] + list(extra), log)
        self.box.wait_for_api()
        self.url = "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request(method, path, body=None if body is None else json.dumps(body),
                  headers=headers or {})
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        return r.status, data

    def api(self, path, token=None):
        status, data = self.request("GET", path, headers={"Authorization": "Bearer " + token}
                                    if token else {})
        self.assertEqual(status, 200, data)
        return json.loads(data)

    def open(self, fragment=""):
        if self.driver is None:
            self.driver = browser(self.profile)
        self.driver.get(self.url + "/" + fragment)

    def wait(self, predicate, timeout=30, what="the page"):
        try:
            # The page re-renders live: an element found may be replaced before it is read.
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                                 ignored_exceptions=[StaleElementReferenceException]).until(
                lambda d: predicate(d))
        except TimeoutException:
            self.fail("timed out waiting for %s; page at %s: %s\njobs: %s" % (
                what, self.driver.current_url,
                self.driver.find_element(By.TAG_NAME, "body").text[:2000],
                self.box.query("SELECT id, name, state FROM jobs ORDER BY id DESC LIMIT 10")))

    def shot(self, name):
        out = os.environ.get("SLUICE_SCREENSHOTS")
        if out:
            os.makedirs(out, exist_ok=True)
            self.driver.save_screenshot(os.path.join(out, name + ".png"))

    def drained(self, token=None):
        queues = self.api("/api/v1/queues", token)["queues"]
        return queues and all(not q["jobs"].get(s) for q in queues
                              for s in ("queued", "running", "retrying"))

    def page_counts(self):
        """queue -> state -> count, as the overview shows them."""
        # Read in one script: the table is replaced whole when counts change.
        return self.driver.execute_script("""
            const out = {};
            for (const row of document.querySelectorAll("table.counts tbody tr")) {
              const q = {};
              for (const c of row.querySelectorAll("td[data-state]")) {
                const n = Number(c.textContent);
                if (n) q[c.dataset.state] = n;
              }
              out[row.dataset.queue] = q;
            }
            return out;""")

    def api_counts(self):
        return {q["name"]: q["jobs"] for q in self.api("/api/v1/queues")["queues"]}

    def no_script_ran(self):
        try:
            alert = self.driver.switch_to.alert
            text = alert.text
            alert.dismiss()
            self.fail("a script ran: alert %r" % text)
        except NoAlertPresentException:
            pass
        self.assertEqual(self.driver.find_elements(By.TAG_NAME, "img"), [])
        errors = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE" and
                  "Content Security Policy" in e["message"]]
        self.assertEqual(errors, [])

    def test_overview_equals_the_api_and_follows_it_live(self):
        self.assertTrue(harness.extract_corpus(self.kcidb), "the corpus is missing")
        self.box.drop("broken.json", "{ not json")
        self.box.drop(XSS, "{ not json either")
        self.start()
        self.box.wait_for(self.drained, 120, "the corpus to be ingested")
        self.open()
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "table.counts tbody tr"),
                  what="the counts")
        self.wait(lambda d: "live" == d.find_element(By.ID, "live").text, what="the live stream")
        self.assertEqual(self.page_counts(), self.api_counts())
        self.assertEqual(self.page_counts()["default"]["failed"], 2)
        # A file dropped now shows without a reload: one more succeeded.
        before = self.page_counts()["default"].get("succeeded", 0)
        self.box.drop("late.json", harness.GOOD)
        self.wait(lambda d: self.page_counts()["default"].get("succeeded", 0) == before + 1,
                  what="the live count")
        self.wait(lambda d: "late.json" in d.find_element(By.ID, "feed").text,
                  what="the live feed")
        self.box.wait_for(self.drained, 30, "the late file")
        self.wait(lambda d: self.page_counts() == self.api_counts(), what="equal counts")
        self.shot("overview")
        self.no_script_ran()

    def test_a_hostile_file_name_is_shown_as_text(self):
        self.box.drop(XSS, "{ not json")
        self.start()
        self.box.wait_for(self.drained, 30, "the file to fail")
        job_id = self.box.query("SELECT id FROM jobs WHERE name=?", XSS)[0][0]
        for fragment in ("#/jobs?state=failed", "#/failed", "#/job/%d" % job_id,
                         "#/jobs?name=" + urllib.parse.quote(XSS)):
            self.open(fragment)
            self.wait(lambda d: XSS in d.find_element(By.TAG_NAME, "main").text,
                      what="the name as text on " + fragment)
            self.no_script_ran()
        self.open("#/failed")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "section[data-code]"),
                  what="the failure groups")
        self.shot("failed")
        # What the server sent for the page: no inline script, a policy forbidding one.
        status, html = self.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertNotIn("<script>", html)

    def test_a_failed_job_retried_from_the_page_succeeds_live(self):
        self.start()
        harness_drop_json(self.cmds, "check.json", ["/bin/sh", "-c",
                                                    "echo checking; test -e %s" % self.flag])
        self.box.wait_for(lambda: self.box.query(
            "SELECT state FROM jobs WHERE name='check.json'") == [("failed",)], 30,
            "the command to fail")
        job_id = self.box.query("SELECT id FROM jobs WHERE name='check.json'")[0][0]
        self.open("#/job/%d" % job_id)
        self.wait(lambda d: "-- end of log: job %d failed --" % job_id in
                  d.find_element(By.ID, "log").text, what="the log with its end marker")
        self.assertIn("checking", self.driver.find_element(By.ID, "log").text)
        self.shot("job")
        open(self.flag, "w").close()
        self.driver.find_element(By.CSS_SELECTOR, "button[data-action=retry]").click()
        self.driver.switch_to.alert.accept()  # the confirmation
        # The file goes back to its spool and runs as a new job: the page lists both, and
        # the new one turns succeeded without a reload.
        self.wait(lambda d: "name=check.json" in d.current_url, what="the jobs of the file")
        self.wait(lambda d: any("succeeded" in r.text for r in
                                d.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")),
                  what="the retried job to succeed on the page")
        states = sorted(s for (s,) in self.box.query(
            "SELECT state FROM jobs WHERE name='check.json'"))
        self.assertEqual(states, ["failed", "succeeded"])

    def test_token_flow_logout_and_csrf(self):
        token_file = os.path.join(self.box.dir, "token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        self.start("--api-token-file", token_file)
        harness_drop_json(self.cmds, "nope.json", ["/bin/false"])
        self.box.wait_for(lambda: self.drained(TOKEN), 30, "the command to fail")
        job_id = self.box.query("SELECT id FROM jobs")[0][0]
        # Without a session the API answers 401, the page asks for the token.
        self.assertEqual(self.request("GET", "/api/v1/queues")[0], 401)
        self.open()
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "form.login"), what="the login")
        field = self.driver.find_element(By.NAME, "token")
        field.send_keys("wrong")
        field.submit()
        self.wait(lambda d: "not this server's API token" in
                  d.find_element(By.CSS_SELECTOR, "form.login .error").text, what="the refusal")
        field = self.driver.find_element(By.NAME, "token")
        field.send_keys(TOKEN)
        field.submit()
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "table.counts"), what="the overview")
        self.wait(lambda d: "live" == d.find_element(By.ID, "live").text, what="live events")
        # The session is an HttpOnly, SameSite=Strict cookie; the token is nowhere in the page.
        cookie = self.driver.get_cookie("sluice_session")
        self.assertTrue(cookie["httpOnly"])
        self.assertEqual(cookie["sameSite"], "Strict")
        self.assertNotIn(TOKEN, self.driver.current_url)
        self.assertNotIn(TOKEN, self.driver.page_source)
        self.assertEqual(self.driver.execute_script(
            "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + "
            "document.cookie"), "{}{}")
        # The cookie reads; a state-changing call also needs the CSRF token.
        jar = {"Cookie": "sluice_session=" + cookie["value"]}
        self.assertEqual(self.request("GET", "/api/v1/queues", headers=jar)[0], 200)
        status, body = self.request("POST", "/api/v1/jobs/%d/retry" % job_id, headers=jar)
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"]["code"], "csrf")
        csrf = json.loads(self.request("GET", "/api/v1/session", headers=jar)[1])["csrf"]
        status, body = self.request("POST", "/api/v1/jobs/%d/retry" % job_id,
                                    headers=dict(jar, **{"X-CSRF-Token": csrf}))
        self.assertIn(status, (200, 202), body)
        # Logging out ends the session: the page asks again, the cookie opens nothing.
        self.driver.find_element(By.ID, "logout").click()
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "form.login"), what="the login again")
        self.assertEqual(self.request("GET", "/api/v1/queues", headers=jar)[0], 401)

    def test_the_page_reconnects_after_a_restart_and_shows_every_event_once(self):
        self.start()
        for i in range(5):
            self.box.drop("before%d.json" % i, harness.GOOD)
        self.box.wait_for(self.drained, 30, "the first files")
        self.open()
        self.wait(lambda d: "live" == d.find_element(By.ID, "live").text, what="live events")
        first = self.box.query("SELECT MAX(id) FROM events")[0][0]
        self.box.drop("during0.json", harness.GOOD)
        self.wait(lambda d: "during0.json" in d.find_element(By.ID, "feed").text,
                  what="a live event")
        self.box.stop(signal.SIGTERM)
        self.wait(lambda d: d.find_element(By.ID, "live").text != "live", what="the outage")
        for i in range(1, 6):
            self.box.drop("during%d.json" % i, harness.GOOD)
        self.start()
        # Archived (each after its final state and events committed), not only "nothing
        # queued": just after the start the queues may not show the new files yet.
        self.box.wait_for(lambda: all("during%d.json" % i in self.box.listing("archive")
                                      for i in range(1, 6)) and self.drained(),
                          30, "the files dropped while it was down")
        last = self.box.query("SELECT MAX(id) FROM events")[0][0]
        self.wait(lambda d: "#%d " % last in d.find_element(By.ID, "feed").text, 30,
                  "the page to catch up after the restart")
        shown = [int(m) for m in re.findall(r"^#(\d+) ", self.driver.find_element(
            By.ID, "feed").text, re.M)]
        stored = [i for (i,) in self.box.query("SELECT id FROM events WHERE id > ? ORDER BY id",
                                               first)]
        self.assertEqual(sorted(shown), stored)  # every event since the page opened, once
        self.assertEqual(shown, sorted(shown, reverse=True))  # newest first, in id order

    def confirm_click(self, css):
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        self.driver.switch_to.alert.accept()

    def test_failures_by_code_with_advice_and_retry_all_of_a_code(self):
        for i in range(3):
            self.box.drop("trunc%d.json" % i, '{"version": ')
        self.box.drop("old.json", {"version": {"major": 0, "minor": 1}})
        self.start()
        self.box.wait_for(lambda: len(self.box.query(
            "SELECT id FROM jobs WHERE state='failed'")) == 4, 30, "four failures")
        self.open("#/failed")
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "section[data-code]")) == 2,
                  what="two groups")
        groups = {e.get_attribute("data-code"): e.text for e in
                  self.driver.find_elements(By.CSS_SELECTOR, "section[data-code]")}
        self.assertIn("invalid_json — 3", groups["invalid_json"])
        self.assertIn("What to do: fix the producer", groups["invalid_json"])
        self.assertIn("unsupported_version — 1", groups["unsupported_version"])
        self.assertEqual(json.loads(self.request("GET", "/api/v1/failures")[1])["failures"][0]
                         ["count"], 3)
        # The producer is fixed: the three files, corrected where they wait, run again.
        failed_dir = os.path.join(self.kcidb, "failed")
        for i in range(3):
            with open(os.path.join(failed_dir, "trunc%d.json" % i), "w") as f:
                json.dump(harness.GOOD, f)
        self.confirm_click("section[data-code=invalid_json] button[data-action=retry-all]")
        self.wait(lambda d: "3 sent again" in d.find_element(By.TAG_NAME, "main").text,
                  what="the retry to be acknowledged")
        self.box.wait_for(lambda: len(self.box.query(
            "SELECT id FROM jobs WHERE state='succeeded'")) == 3, 30, "the three to succeed")
        # The three old jobs are history now: the view keeps only what is still failed.
        self.open("#/failed")
        self.wait(lambda d: [e.get_attribute("data-code") for e in d.find_elements(
            By.CSS_SELECTOR, "section[data-code]")] == ["unsupported_version"],
            what="invalid_json gone from the failures")
        old = self.box.query("SELECT MIN(id) FROM jobs WHERE name='trunc0.json'")[0][0]
        self.open("#/job/%d" % old)
        self.wait(lambda d: "its file went back into the spool" in
                  d.find_element(By.TAG_NAME, "main").text, what="the retried job's page")
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "button[data-action=retry]"),
                         [])

    def test_deferred_files_promoted_from_the_page(self):
        deferred = os.path.join(self.kcidb, "deferred")
        os.makedirs(deferred)
        for name in ("a.json", "b.json"):
            with open(os.path.join(deferred, name), "w") as f:
                json.dump(harness.GOOD, f)
        self.start()
        self.box.wait_for(lambda: len(self.box.query(
            "SELECT id FROM jobs WHERE state='deferred'")) == 2, 30, "two deferred files")
        self.open("#/jobs?state=deferred")
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")) == 2,
                  what="the deferred jobs")
        self.confirm_click("button[data-action=promote-all]")
        self.box.wait_for(lambda: sorted(s for (s,) in self.box.query(
            "SELECT state FROM jobs")) == ["succeeded", "succeeded"], 30, "both to run")

    def test_a_task_added_on_the_page_runs_and_a_bad_one_names_its_field(self):
        repo = os.path.join(self.box.dir, "repo")
        os.makedirs(repo)
        from test_tasks import commit, git
        git(repo, "init", "-q", "-b", "main")
        for i in range(3):
            commit(repo, "a.txt", "line %d\n" % i, "commit %d" % i)
        self.start("--archive-path", os.path.join(self.box.dir, "archive"))
        self.open("#/tasks")
        area = self.wait(lambda d: d.find_element(By.NAME, "task"), what="the task form")

        def submit(task):
            area.clear()
            area.send_keys(json.dumps({"tasks": [task]}))
            self.driver.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
        task = {"task_id": "repo", "backend": "git", "category": "commit",
                "backend_args": {"uri": repo, "colour": "red"}, "scheduler": {"delay": 60}}
        submit(task)
        self.wait(lambda d: "colour" in d.find_element(By.CSS_SELECTOR, "form.card .error").text,
                  what="the field named in the refusal")
        del task["backend_args"]["colour"]
        submit(task)
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-task=repo]"),
                  what="the task in the list")
        # The list is drawn again as the task's state changes: a link found just before may be
        # gone by the click (stale), so the click is retried until it lands.
        self.wait(lambda d: d.find_element(By.LINK_TEXT, "repo").click() or True,
                  what="a click on the task's link")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "table.runs tbody tr") and
                  "finished" in d.find_element(By.CSS_SELECTOR, "table.runs tbody tr").text,
                  what="its first run, finished, on its page")
        row = self.driver.find_element(By.CSS_SELECTOR, "table.runs tbody tr").text
        self.assertIn(" 3 ", " " + row + " ")  # three new items
        self.no_script_ran()

    def test_a_page_of_another_origin_cannot_change_anything(self):
        # No token (loopback): any web page the operator visits could post a form here.
        self.start()
        harness_drop_json(self.cmds, "nope.json", ["/bin/false"])
        self.box.wait_for(self.drained, 30, "the command to fail")
        job_id = self.box.query("SELECT id FROM jobs")[0][0]
        evil = os.path.join(self.box.dir, "evil")
        os.makedirs(evil)
        with open(os.path.join(evil, "index.html"), "w") as f:
            f.write('<form method="POST" enctype="text/plain" action="%s/api/v1/jobs/%d/retry">'
                    '<input name="x" value="y"></form><script>document.forms[0].submit()'
                    '</script>' % (self.url, job_id))
        other = harness.free_port()
        server = __import__("subprocess").Popen(
            ["/usr/bin/python3", "-m", "http.server", str(other), "--bind", "127.0.0.1",
             "--directory", evil], stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
        try:
            self.box.wait_for(lambda: self.request_other(other), 10, "the other site")
            self.open()
            self.driver.get("http://127.0.0.1:%d/" % other)
            self.wait(lambda d: "csrf" in d.find_element(By.TAG_NAME, "body").text,
                      what="the refusal the form got")
        finally:
            server.kill()
            server.wait()
        time.sleep(0.5)
        self.assertEqual(self.box.query("SELECT id, state FROM jobs"), [(job_id, "failed")])
        # The same call from the daemon's own page (here behind a proxy) goes through.
        status, _ = self.request("POST", "/api/v1/jobs/%d/retry" % job_id,
                                 headers={"Origin": "https://evil.example"})
        self.assertEqual(status, 403)
        status, _ = self.request("POST", "/api/v1/jobs/%d/retry" % job_id,
                                 headers={"Origin": "https://sluice.example.org",
                                          "X-Forwarded-Host": "sluice.example.org"})
        self.assertIn(status, (200, 202))  # the page, through a proxy

    def request_other(self, port):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/")
            return c.getresponse().status == 200
        except OSError:
            return False

    def test_on_a_shared_database_the_overview_shows_who_holds_what(self):
        self.box.database = harness.pg_database("dash")
        self.box.postgres = True
        self.start()
        self.box.drop("one.json", harness.GOOD)
        self.open()
        self.wait(lambda d: "Processes and leases" in d.find_element(By.ID, "leases").text,
                  what="the leases")
        text = self.driver.find_element(By.ID, "leases").text
        owners = {o for (o,) in self.box.query("SELECT owner FROM leases")}
        self.assertEqual(len(owners), 1)
        self.assertIn(owners.pop(), text)
        for role in ("daemon:", "spool:", "scheduler", "pruner"):
            self.assertIn(role, text)
        self.wait(lambda d: self.page_counts() == self.api_counts() and
                  self.page_counts().get("default", {}).get("succeeded") == 1,
                  what="the job on a PostgreSQL store")

    def test_a_job_sent_over_http_shows_its_payload_as_text(self):
        self.start()
        payload = {"version": {"major": 5, "minor": 3}, "tests": [
            {"id": "x:<script>alert(1)</script>", "origin": "x", "build_id": "x:b"}]}
        status, body = self.request("POST", "/api/v1/jobs", {"kind": "kcidb",
                                                             "payload": payload},
                                    {"Content-Type": "application/json"})
        self.assertEqual(status, 201, body)
        job_id = json.loads(body)["id"]
        job = self.api("/api/v1/jobs/%d" % job_id)
        self.assertEqual(job["payload_bytes"], len(job["payload_preview"].encode()))
        self.assertIn("<script>alert(1)</script>", job["payload_preview"])
        self.open("#/job/%d" % job_id)
        summary = self.wait(lambda d: d.find_element(By.CSS_SELECTOR, "details summary"),
                            what="the payload")
        summary.click()
        self.wait(lambda d: "<script>alert(1)</script>" in
                  d.find_element(By.CSS_SELECTOR, "pre.payload").text, what="the payload text")
        self.no_script_ran()
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "main script"), [])


def harness_drop_json(spool, name, value):
    tmp = os.path.join(spool, "." + name + ".part")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.rename(tmp, os.path.join(spool, name))


if __name__ == "__main__":
    harness.main()
