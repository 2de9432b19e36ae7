"""Differential test of validation against the Python reference: jsonschema (Debian's
python3-jsonschema, Draft 7, format checking on, as kcidb-io runs it) over the whole corpus
and over thousands of mutated documents. Every document must get the same verdict from the
real daemon (archived = valid, failed = invalid) as from the reference.

The reference's date-time check comes from rfc3339-validator, which Debian does not package;
its rule (one regular expression plus a calendar check) is restated below. uri uses rfc3987
(python3-rfc3987) and email jsonschema's own check, as in the reference."""

import calendar
import copy
import json
import os
import random
import re
import sys
import unittest

import harness

try:
    import jsonschema
except ImportError:
    print("skipped: python3-jsonschema is not installed")
    sys.exit(77)

# rfc3339-validator's RFC3339_REGEX (seconds 00-59: no leap second), which jsonschema calls
# on the value upper-cased (hence IGNORECASE here), and its calendar check (no year 0).
RFC3339 = re.compile(
    r"^(\d{4})-(0[1-9]|1[0-2])-(\d{2})T(?:[01]\d|2[0-3]):(?:[0-5]\d):(?:[0-5]\d)"
    r"(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$", re.IGNORECASE | re.ASCII)


def reference_checker():
    checker = copy.deepcopy(jsonschema.draft7_format_checker)

    @checker.checks("date-time")
    def date_time(value):
        if not isinstance(value, str):
            return True
        m = RFC3339.match(value)
        if not m:
            return False
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if year == 0:
            return False
        return 1 <= day <= calendar.monthrange(year, month)[1]
    return checker


class Reference:
    def __init__(self):
        self.checker = reference_checker()
        self.validators = {}

    def valid(self, doc):
        v = doc.get("version") if isinstance(doc, dict) else None
        if not (isinstance(v, dict) and type(v.get("major")) is int):
            return False
        major, minor = v["major"], v.get("minor", 0)
        path = os.path.join(harness.KCIDB, "kcidb_schema_v%d_%d.json" % (major, minor))
        if not os.path.exists(path):
            return False
        if path not in self.validators:
            with open(path) as f:
                self.validators[path] = jsonschema.Draft7Validator(
                    json.load(f), format_checker=self.checker)
        return self.validators[path].is_valid(doc)


BAD_DATES = ["2020-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
             "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-29T00:00:00Z",
             "2020-01-01 00:00:00Z", "2020-01-01T00:00:00", "2020-01-01T25:00:00Z",
             "2020-01-01T00:00:60Z", "2020-01-01t00:00:00z", "2020-01-01T00:00:00.Z",
             "2020-01-01T00:00:00+01:00", "2020-01-01T00:00:00+0100", "2020-1-01T00:00:00Z",
             "2020-01-01T00:00:00Z\n", "2020-01-01T00:00:00.123456789Z", "", "yesterday"]
URIS = ["https://example.org/a b", "example.org/path", "https://example.org/%zz", "a:b",
        "https://[::1]:80/x", "http://[::1", "https://ex.org:80a/", "mailto:", "https://x\n",
        "https://ex.org/ü", "https://ex.org/#a#b", "https://u:p@ex.org/?q=a&b=%20#f",
        "https://ex.org/?q=[x]", "ftp://ex.org/file", "HTTPS://EX.ORG/", "1abc:x", ""]
IDS = ["o:x", "O:x", "nocolon", "o:", ":x", "o:x\n", "o:a\u0000b", "o_1:x y", "o-1:x"]
PATHS = ["", "a", "a.b", "a..b", ".a", "a.", "a b", "a.b-c_d", "a.\n", "a\n"]
STATUSES = ["PASS", "FAIL", "ERROR", "MISS", "DONE", "SKIP", "pass", "MAYBE", ""]
VALUES = [None, 1, 1.0, 1.5, -1, True, "1", [], {}, "x" * 16384, "é" * 16384, "é" * 16385]


def mutate(doc, rng):
    doc = copy.deepcopy(doc)
    lists = [k for k in ("checkouts", "builds", "tests", "issues", "incidents") if doc.get(k)]
    if not lists:
        return doc
    obj = rng.choice(doc[rng.choice(lists)])
    kind = rng.randrange(9)
    if kind == 0:
        obj[rng.choice(["start_time", "_timestamp"])] = rng.choice(BAD_DATES)
    elif kind == 1:
        obj[rng.choice(["log_url", "config_url", "report_url", "git_repository_url"])] = \
            rng.choice(URIS)
    elif kind == 2:
        obj["id"] = rng.choice(IDS)
    elif kind == 3 and obj:
        obj[rng.choice(sorted(obj))] = rng.choice(VALUES)
    elif kind == 4 and obj:
        del obj[rng.choice(sorted(obj))]
    elif kind == 5:
        obj[rng.choice(["unknown", "colour", "_private"])] = 1
    elif kind == 6:
        obj["status"] = rng.choice(STATUSES)
    elif kind == 7:
        obj["path"] = rng.choice(PATHS)
    else:
        doc["version"] = {"major": rng.choice([4, 5, 5, 5, 6]), "minor": rng.choice([0, 3, 4])}
    return doc


class DifferentialTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()
        self.corpus = os.path.join(self.box.dir, "corpus")
        os.makedirs(self.corpus)
        if not harness.extract_corpus(self.corpus):
            self.box.close()
            print("skipped: no ../shared/kcidb")
            sys.exit(77)
        self.ref = Reference()

    def tearDown(self):
        self.box.close()

    def verdicts(self, docs):
        """Drains `docs` ({name: text}) through the daemon; {name: valid?}."""
        for name, text in docs.items():
            self.box.drop(name, text)
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        archived, failed = set(self.box.listing("archive")), set(self.box.listing("failed"))
        out = {}
        for name in docs:
            self.assertTrue((name in archived) != (name in failed), name)
            out[name] = name in archived
        return out

    def test_whole_corpus_is_valid_for_both(self):
        names = sorted(os.listdir(self.corpus))
        for name in names:
            with open(os.path.join(self.corpus, name)) as f:
                self.assertTrue(self.ref.valid(json.load(f)), name)
        docs = {}
        for name in names:
            with open(os.path.join(self.corpus, name), "rb") as f:
                docs[name] = f.read()
        self.assertTrue(all(self.verdicts(docs).values()))

    def test_mutated_documents_get_the_same_verdict(self):
        rng = random.Random(int(os.environ.get("SLUICE_DIFF_SEED", "20261123")))
        small = []
        for name in sorted(os.listdir(self.corpus)):
            if os.path.getsize(os.path.join(self.corpus, name)) < 60_000:
                with open(os.path.join(self.corpus, name)) as f:
                    doc = json.load(f)
                if doc["version"]["major"] == 5:  # v4 verdicts also involve the upgrade
                    small.append(doc)
        docs, expected = {}, {}
        for i in range(3000):
            doc = mutate(rng.choice(small), rng)
            name = "m%05d.json" % i
            docs[name] = json.dumps(doc)
            expected[name] = self.ref.valid(doc)
        got = self.verdicts(docs)
        disagree = [(n, expected[n], docs[n][:300]) for n in docs if got[n] != expected[n]]
        print("%d mutated documents, %d valid per the reference, %d disagreements" % (
            len(docs), sum(expected.values()), len(disagree)))
        self.assertEqual(disagree[:5], [])
        self.assertGreater(sum(expected.values()), 300)
        self.assertGreater(len(docs) - sum(expected.values()), 1000)


if __name__ == "__main__":
    harness.main()
