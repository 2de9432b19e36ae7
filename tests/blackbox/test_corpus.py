"""The 500 real submissions drained with --burst: every file archived, exact object counts,
v4.2 builds upgraded to status PASS, known repositories named, the database consistent."""

import json
import sys
import unittest

import harness


class CorpusTest(unittest.TestCase):
    STORE = "sqlite"

    def setUp(self):
        self.box = harness.Sandbox(store=self.STORE)
        if not harness.extract_corpus(self.box.spool):
            self.box.close()
            print("skipped: no ../shared/kcidb/submissions.zip")
            sys.exit(77)

    def tearDown(self):
        self.box.close()

    def test_the_corpus_drains_with_exact_counts(self):
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("500 succeeded, 0 failed", r.stdout)
        self.assertEqual(len(self.box.listing("archive")), 500)
        self.assertEqual(self.box.listing("failed"), [])
        self.assertEqual([n for n in self.box.listing() if n.endswith(".json")], [])
        counts = {t: self.box.query("SELECT COUNT(*) FROM " + t)[0][0]
                  for t in ("checkouts", "builds", "tests", "issues", "incidents")}
        self.assertEqual(counts, {"checkouts": 32, "builds": 103, "tests": 15720,
                                  "issues": 4, "incidents": 3})
        self.assertTrue(self.box.integrity())

        # The v4.2 builds: `valid: true` became `status: PASS`.
        statuses = dict(self.box.query(
            "SELECT id, status FROM builds WHERE id IN ('redhat:1930444409-noarch-kernel',"
            " 'redhat:1932158469-x86_64-kernel-debug')"))
        self.assertEqual(set(statuses.values()), {"PASS"})
        # Checkouts from a repository in the trees file carry its name.
        named = self.box.query(
            "SELECT tree_name FROM checkouts WHERE git_repository_url ="
            " 'https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git'")
        self.assertTrue(named)
        self.assertEqual({n for (n,) in named}, {"mainline"})

        # What a user sees afterwards.
        stats = self.box.sluice("stats", "--database", self.box.database)
        self.assertIn("succeeded  500", stats.stdout)
        self.assertIn("tests      15720", stats.stdout)
        jobs = json.loads(self.box.sluice("jobs", "--json", "--limit", "1000", "--database",
                                          self.box.database).stdout)
        self.assertEqual(len(jobs), 500)
        self.assertTrue(all(j["state"] == "succeeded" and j["attempts"] == 1 for j in jobs))

    def test_a_second_run_of_the_same_files_changes_no_counts(self):
        self.assertEqual(self.box.burst().returncode, 0)
        for name in self.box.listing("archive"):
            import os
            os.rename(os.path.join(self.box.spool, "archive", name),
                      os.path.join(self.box.spool, name))
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.box.query("SELECT COUNT(*) FROM tests")[0][0], 15720)
        self.assertEqual(len(self.box.listing("archive")), 500)


class CorpusPostgresTest(CorpusTest):
    """The same on PostgreSQL, into the KernelCI dashboard's table layout."""
    STORE = "postgresql"


if __name__ == "__main__":
    harness.main()
