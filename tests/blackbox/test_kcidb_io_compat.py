"""Sluice's verdicts agree with kcidb-io's on what its tests and production check: versions
kcidb-io does not have are refused ("1.0", {"major": 1}, {"major": 1, "minor": 0}; "1" is 1.1),
and date-times are checked as jsonschema with rfc3339-validator checks them (no leap second,
no year 0)."""

import json
import unittest

import harness

V53 = {"major": 5, "minor": 3}


def test_with(**fields):
    t = {"id": "o:t1", "origin": "o", "build_id": "o:b1"}
    t.update(fields)
    return {"version": V53, "tests": [t]}


class KcidbIoCompatTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()

    def tearDown(self):
        self.box.close()

    def test_versions_and_dates_get_kcidb_ios_verdict(self):
        cases = {
            # name: (document, expected error code or None for accepted)
            "v1-string.json": ({"version": "1"}, None),
            "v1-1-object.json": ({"version": {"major": 1, "minor": 1}}, None),
            "v1-0-string.json": ({"version": "1.0"}, "unsupported_version"),
            "v1-major-only.json": ({"version": {"major": 1}}, "unsupported_version"),
            "v1-0-object.json": ({"version": {"major": 1, "minor": 0}}, "unsupported_version"),
            "v2-string.json": ({"version": "2.0"}, "unsupported_version"),
            "v4-major-only.json": ({"version": {"major": 4}}, None),
            "v5-4.json": ({"version": {"major": 5, "minor": 4}}, "unsupported_version"),
            "leap-second.json": (test_with(start_time="2020-12-31T23:59:60Z"),
                                 "schema_violation"),
            "year-zero.json": (test_with(start_time="0000-01-01T00:00:00Z"), "schema_violation"),
            "year-one.json": (test_with(start_time="0001-01-01T00:00:00Z"), None),
            "lower-case.json": (test_with(start_time="2020-01-01t00:00:00z"), None),
        }
        for name, (doc, _) in cases.items():
            self.box.drop(name, json.dumps(doc))
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        got = dict(self.box.query("SELECT name, error_code FROM jobs"))
        for name, (_, code) in cases.items():
            self.assertEqual(got[name], code, name)


if __name__ == "__main__":
    harness.main()
